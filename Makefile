# notebook-platform: `make dev` serves the platform, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

help: ## This list
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# Component makefiles (Python workspace, charts, keycloak, ...) each own their targets.
include $(sort $(wildcard mk/*.mk))

dev: venv sandbox-tools ## Serve every API on http://127.0.0.1:8002 over an embedded PostgreSQL (data in .nbp/)
	$(UV) run --no-sync nbp-dev

migrate: venv ## Upgrade every service's schema (NBP_DATABASE_URL, or the parts NBP_DB_*)
	$(UV) run --no-sync nbp-registry migrate
	$(UV) run --no-sync nbp-history migrate
	$(UV) run --no-sync nbp-executor migrate

test: venv sandbox-tools lint ## Install what is needed and run every test
	$(UV) run --no-sync pytest $(PYTEST_ARGS)

bench: venv ## Benchmarks (not tests): ratios against named baselines
	$(UV) run --no-sync python -m bench $(BENCH)

.PHONY: help dev migrate test bench
