# notebook-platform: `make dev` serves the platform, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

help:
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# Component makefiles (Python workspace, charts, keycloak, ...) each own their targets.
include $(sort $(wildcard mk/*.mk))

dev: venv ## Serve every API on http://127.0.0.1:8002 over an embedded PostgreSQL (data in .nbp/)
	$(UV) run --frozen nbp-dev

migrate: venv ## Upgrade every service's schema (NBP_DATABASE_URL, or the parts NBP_DB_*)
	$(UV) run --frozen nbp-registry migrate
	$(UV) run --frozen nbp-history migrate
	$(UV) run --frozen nbp-executor migrate

test: venv lint ## Install what is needed and run every test
	$(UV) run --frozen pytest $(PYTEST_ARGS)

bench: venv ## Benchmarks (not tests): ratios against named baselines
	$(UV) run --frozen python -m bench $(BENCH)

.PHONY: help dev migrate test bench
