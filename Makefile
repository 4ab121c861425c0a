# notebook-platform: `make dev` serves the platform, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

help: ## This list
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# Component makefiles (Python workspace, charts, keycloak, ...) each own their targets.
include $(sort $(wildcard mk/*.mk))

# Both run the command itself (exec, not `uv run`), so that Ctrl-C and SIGTERM reach it directly.
dev: venv sandbox-tools hub-proxy ## The whole platform: Keycloak :8180, API :8002, JupyterHub :8000, Superset :8088 (NBP_*_PORT)
	exec .venv/bin/nbp-platform

api: venv sandbox-tools ## The API alone on http://127.0.0.1:8002, NBP_AUTH=none, loopback only (PostgreSQL in .nbp/)
	exec env NBP_AUTH=none .venv/bin/nbp-dev

migrate: venv ## Upgrade every service's schema (NBP_DATABASE_URL, or the parts NBP_DB_*)
	$(UV) run --no-sync nbp-registry migrate
	$(UV) run --no-sync nbp-history migrate
	$(UV) run --no-sync nbp-executor migrate

test: venv sandbox-tools hub-proxy lint ## Install what is needed and run every test
	$(UV) run --no-sync pytest $(PYTEST_ARGS)

bench: venv ## Benchmarks (not tests): ratios against named baselines
	$(UV) run --no-sync python -m bench $(BENCH)

.PHONY: help dev api migrate test bench
