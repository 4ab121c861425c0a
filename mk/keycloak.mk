# A real Keycloak on 127.0.0.1 for development and the tests: the official server distribution fetched
# through Maven (pinned, checksummed), the realm (keycloak-realm/realm.json) plus its development
# additions (keycloak-realm/dev/), on a Java 21+ found or installed. See keycloak-realm/README.md.
KEYCLOAK_SCRIPT := python3 scripts/keycloak.py

keycloak: ## Start the local Keycloak (port $NBP_KEYCLOAK_PORT, 8180) and print the NBP_* settings for it
	@$(KEYCLOAK_SCRIPT) start
	@echo "# point a service at it:  eval \"\$$($(KEYCLOAK_SCRIPT) env --export)\""
	@$(KEYCLOAK_SCRIPT) env

keycloak-stop: ## Stop the local Keycloak
	@$(KEYCLOAK_SCRIPT) stop

keycloak-status: ## Is the local Keycloak up?
	@$(KEYCLOAK_SCRIPT) status

keycloak-reset: ## Stop the local Keycloak and drop its database (the next start imports the realm afresh)
	@$(KEYCLOAK_SCRIPT) reset

.PHONY: keycloak keycloak-stop keycloak-status keycloak-reset
