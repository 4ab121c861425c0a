# notebook-platform: `make dev` serves the platform, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

help:
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# Component makefiles (charts, keycloak, ...) each own their targets.
include $(sort $(wildcard mk/*.mk))
