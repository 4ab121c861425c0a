# A Kubernetes control plane built and run here (no Docker, no kind): etcd (Debian's etcd-server),
# kube-apiserver and kube-controller-manager (built from the k8s.io/kubernetes Go module into
# .cache/kube/<version>/), on loopback inside a network namespace of their own (scripts/cluster/cluster.sh).
#
#   make cluster         start it (idempotent); kubeconfig .nbp/cluster/kubeconfig
#   make cluster-exec CMD='helm list -A'   run a command inside its network namespace (KUBECONFIG set)
#   make cluster-stop    stop it, delete its namespace and its state
#   make cluster-test    helm install/upgrade/test/uninstall of the platform against a fresh one (part of
#                        `make test`)
#
# No kubelet and no container runtime: objects are admitted and controllers act, but Pods stay Pending.

KUBE_VERSION  := v1.34.4
KUBE_BIN      := .cache/kube/$(KUBE_VERSION)
KUBE_BINARIES := $(KUBE_BIN)/kube-apiserver $(KUBE_BIN)/kube-controller-manager
CLUSTER_STATE ?= .nbp/cluster
# cluster-test's own control plane (a fresh one each run, stopped afterwards; `make cluster` is not touched)
CLUSTER_TEST_STATE ?= .nbp/cluster-test
CLUSTER_SH := scripts/cluster/cluster.sh
# The pytest fixture `kube_control_plane` (conftest.py) starts its own control plane from these binaries.
export NBP_KUBE_BIN := $(abspath $(KUBE_BIN))

$(KUBE_BINARIES) &:
	$(require-go)
	KUBE_VERSION=$(KUBE_VERSION) OUT=$(abspath $(KUBE_BIN)) scripts/cluster/build.sh

cluster-tools: $(KUBE_BINARIES) $(HELM) ## Build kube-apiserver and kube-controller-manager; install etcd, iproute2, openssl
	@command -v etcd >/dev/null && command -v ip >/dev/null && command -v openssl >/dev/null && command -v curl >/dev/null || { \
		echo "+ apt-get install -y etcd-server iproute2 openssl curl"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server iproute2 openssl curl; }

cluster: cluster-tools ## Start the control plane (etcd, kube-apiserver, kube-controller-manager) in its own network namespace
	KUBE_BIN=$(abspath $(KUBE_BIN)) NBP_CLUSTER_STATE=$(CLUSTER_STATE) $(CLUSTER_SH) start

cluster-stop: ## Stop the control plane, delete its network namespace and state
	NBP_CLUSTER_STATE=$(CLUSTER_STATE) $(CLUSTER_SH) stop

cluster-exec: ## Run CMD inside the control plane's network namespace (KUBECONFIG set)
	NBP_CLUSTER_STATE=$(CLUSTER_STATE) $(CLUSTER_SH) exec -- $(CMD)

# A fresh control plane of its own (state $(CLUSTER_TEST_STATE)), the tests run inside its network
# namespace, and it is stopped afterwards whatever the result.
cluster-test: cluster-tools chart-render ## helm install/upgrade/test/uninstall of the platform against a real API server
	@NBP_CLUSTER_STATE=$(CLUSTER_TEST_STATE) $(CLUSTER_SH) stop >/dev/null
	KUBE_BIN=$(abspath $(KUBE_BIN)) NBP_CLUSTER_STATE=$(CLUSTER_TEST_STATE) $(CLUSTER_SH) start
	@rc=0; NBP_CLUSTER_STATE=$(CLUSTER_TEST_STATE) $(CLUSTER_SH) exec -- \
		env HELM=$(abspath $(HELM)) THIRD_PARTY_CHARTS=$(abspath $(THIRD_PARTY_CHARTS)) \
		$(CHART_VENV)/bin/pytest -c tests/cluster/pytest.ini tests/cluster $(CLUSTER_PYTEST_ARGS) || rc=$$?; \
	NBP_CLUSTER_STATE=$(CLUSTER_TEST_STATE) $(CLUSTER_SH) stop; exit $$rc

# `make test` runs every test; these are part of it.
test: cluster-test

.PHONY: cluster-tools cluster cluster-stop cluster-exec cluster-test
