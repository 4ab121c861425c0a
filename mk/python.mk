# The Python workspace: uv is bootstrapped into .cache/ from PyPI, the venv is .venv (uv.lock pinned).
UV_VERSION ?= 0.13.9
# Python 3.11 or 3.12 (the range pyproject.toml allows), whichever is found first.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || echo python3.11)
UV := .cache/uv/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_CACHE_DIR := $(CURDIR)/.cache/uv-cache
export UV_PYTHON := $(PYTHON)

$(UV):
	@command -v $(PYTHON) >/dev/null || { echo "error: Python 3.11 or 3.12 not found; install one (apt-get install python3.11, or pyenv install 3.11)" >&2; exit 1; }
	$(PYTHON) -m venv .cache/uv
	.cache/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: $(UV) uv.lock pyproject.toml $(wildcard services/*/pyproject.toml)
	$(UV) sync --frozen --all-packages
	@touch $@

uv.lock: pyproject.toml $(wildcard services/*/pyproject.toml) | $(UV)
	$(UV) lock
	@touch $@

venv: .venv/.synced ## Install the Python workspace into .venv

lint: venv ## ruff and mypy over the workspace
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy services tests $(wildcard bench)

.PHONY: venv lint
