# Every sign-in test drives a real browser: Debian's chromium through Playwright (never Playwright's own
# browser download). The Python package is in the locked dev group; the browser comes from apt-get.
browser-tools: ## Install Debian's chromium for the sign-in tests (apt-get as root), or say how
	@if test -x /usr/bin/chromium; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y --no-install-recommends chromium \
	  || { apt-get update && apt-get install -y --no-install-recommends chromium; }; \
	else \
	  echo "error: chromium is missing; run: sudo apt-get install -y chromium" >&2; exit 1; \
	fi

test: browser-tools

.PHONY: browser-tools
