# The Python workspace: uv is bootstrapped into .cache/ from PyPI, the venv is .venv (uv.lock pinned).
UV_VERSION ?= 0.13.9
# Python 3.11 or 3.12 (the range pyproject.toml allows), whichever is found first, by its real path
# (not a pyenv shim, which uv would not recognise as the interpreter of the existing .venv).
ifndef PYTHON
PYTHON := $(shell for p in python3.11 python3.12; do command -v $$p >/dev/null && $$p -c 'import sys; print(sys.executable)' && break; done)
endif
UV := .cache/uv/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_CACHE_DIR := $(CURDIR)/.cache/uv-cache
export UV_PYTHON := $(PYTHON)

$(UV):
	@test -n "$(PYTHON)" || { echo "error: Python 3.11 or 3.12 not found; install one (apt-get install python3.11, or pyenv install 3.11)" >&2; exit 1; }
	$(PYTHON) -m venv .cache/uv
	.cache/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Bytecode compiled at install: sandboxed kernels see the environment read-only and could not write
# it, so every one of them would compile what it imports (IPython, pandas...) from source, every run.
# The same for the in-repo package kernels import (nbp, installed editable).
.venv/.synced: $(UV) uv.lock pyproject.toml $(wildcard services/*/pyproject.toml)
	$(UV) sync --frozen --all-packages --compile-bytecode
	.venv/bin/python -m compileall -q services/kernel/nbp
	@touch $@

uv.lock: pyproject.toml $(wildcard services/*/pyproject.toml) | $(UV)
	$(UV) lock
	@touch $@

venv: .venv/.synced ## Install the Python workspace into .venv

lint: venv ## ruff and mypy over the workspace
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .
	$(UV) run --no-sync mypy services tests $(wildcard bench) $(wildcard examples)

.PHONY: venv lint
