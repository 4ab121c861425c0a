# Users' code runs in a bubblewrap sandbox (nbp_common.sandbox): bwrap, and prlimit from util-linux.
sandbox-tools: ## Install bubblewrap for the users' code sandbox (apt-get as root), or say how
	@if command -v bwrap >/dev/null && test -x /usr/bin/prlimit; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y --no-install-recommends bubblewrap util-linux \
	  || { apt-get update && apt-get install -y --no-install-recommends bubblewrap util-linux; }; \
	else \
	  echo "error: bubblewrap is missing; run: sudo apt-get install -y bubblewrap util-linux" >&2; exit 1; \
	fi

.PHONY: sandbox-tools
