# JupyterHub's proxy: configurable-http-proxy from npm, into .cache/chp (Node.js from apt when missing).
CHP_VERSION := 5.3.0
CHP         := .cache/chp/node_modules/.bin/configurable-http-proxy

$(CHP):
	@command -v npm >/dev/null || { echo "+ apt-get install -y nodejs npm (for configurable-http-proxy)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm; }
	@echo "+ npm install configurable-http-proxy@$(CHP_VERSION) into .cache/chp"
	npm install --prefix .cache/chp --no-save --no-audit --no-fund --loglevel=error configurable-http-proxy@$(CHP_VERSION)
	@test -x $@ && touch $@

hub-proxy: $(CHP) ## Install JupyterHub's proxy (configurable-http-proxy) into .cache/chp

.PHONY: hub-proxy
