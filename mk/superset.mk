# Superset, locally: its own environment (.cache/superset-venv, exactly superset-auth/requirements.lock;
# it pins SQLAlchemy < 2 and cannot share .venv), its metadata in a database of its own on the embedded
# PostgreSQL, signing in through the local Keycloak. `nbp-superset` (services/superset) does the work;
# `make dev`'s supervisor calls `nbp-superset serve` the same way.

superset: venv ## Superset on http://127.0.0.1:8088 (NBP_SUPERSET_PORT): install, migrate, init, import the dashboards, serve
	$(UV) run --no-sync nbp-superset serve

superset-install: venv ## Install Superset into .cache/superset-venv (once; again when the lock changes)
	$(UV) run --no-sync nbp-superset install

superset-lock: | $(UV) ## Re-pin superset-auth/requirements.lock from superset-auth/requirements.in
	$(UV) pip compile --universal --python-version 3.11 --no-header \
		superset-auth/requirements.in -o superset-auth/requirements.lock

# The tests drive the real Superset: installed before pytest starts, so that its time shows on its own.
test: superset-install

.PHONY: superset superset-install superset-lock
