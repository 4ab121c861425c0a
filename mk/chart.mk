# Deployment: the umbrella Helm chart, images, helmfile and kind.
#
#   make chart-test   lint, render, validate and test the chart; lint the Dockerfile (part of `make test`)
#   make e2e          a kind cluster, the images, the platform (helmfile), then tests/e2e through its ingress
#                     (needs Docker: it cannot run where there is none; README "On kind")
#
# Tools are built with `go install module@version` into .cache/tools/<tool>-<version>/ and reused; the
# checks' Python packages live in their own venv, .cache/chart-venv (tests/chart/requirements.txt).

CHART_DIR      := charts/notebook-platform
CHART_CACHE    := .cache/chart
CHART_PREPARED := $(CHART_CACHE)/chart/notebook-platform
CHART_RENDERED := $(CHART_CACHE)/render
CHART_SCHEMAS  := $(CHART_CACHE)/schemas
CHART_VENV     := .cache/chart-venv
CHART_PYTHON   ?= python3.11
TOOLS_DIR      := .cache/tools

HELM_VERSION        := v3.19.5
HELM_K8S_MINOR      := 34
KUBECONFORM_VERSION := v0.7.0
KUBESCORE_VERSION   := v1.20.0
KIND_VERSION        := v0.30.0
HELMFILE_VERSION    := v1.8.0
# The CloudNativePG release whose CRDs the Cluster/Database manifests are validated against; the operator
# chart in helmfile.yaml installs this operator version.
CNPG_VERSION        := v1.27.1
# Oldest and newest Kubernetes the chart is validated against (schemas from kubernetes-validate).
KUBE_VERSIONS       := 1.30.0 1.34.0

HELM        := $(TOOLS_DIR)/helm-$(HELM_VERSION)/helm
KUBECONFORM := $(TOOLS_DIR)/kubeconform-$(KUBECONFORM_VERSION)/kubeconform
KUBESCORE   := $(TOOLS_DIR)/kube-score-$(KUBESCORE_VERSION)/kube-score
KIND        := $(TOOLS_DIR)/kind-$(KIND_VERSION)/kind
HELMFILE    := $(TOOLS_DIR)/helmfile-$(HELMFILE_VERSION)/helmfile
CHART_PY    := $(CHART_VENV)/bin/python

define require-go
	@command -v go >/dev/null || { echo "error: \`go\` not found; install Go >= 1.24 (https://go.dev/doc/install) - the chart tools are built with go install" >&2; exit 1; }
endef

# $(call go-install,module/cmd@version,extra -ldflags)
define go-install
	$(require-go)
	GOBIN=$(abspath $(@D)) CGO_ENABLED=0 go install -trimpath -ldflags "-s -w $(2)" $(1)
endef

$(HELM):
	$(call go-install,helm.sh/helm/v3/cmd/helm@$(HELM_VERSION),\
		-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
		-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(HELM_K8S_MINOR) \
		-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(HELM_K8S_MINOR))

$(KUBECONFORM):
	$(call go-install,github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION))

$(KUBESCORE):
	$(call go-install,github.com/zegl/kube-score/cmd/kube-score@$(KUBESCORE_VERSION),\
		-X main.version=$(KUBESCORE_VERSION))

$(KIND):
	$(call go-install,sigs.k8s.io/kind@$(KIND_VERSION))

$(HELMFILE):
	$(call go-install,github.com/helmfile/helmfile@$(HELMFILE_VERSION),\
		-X go.szostok.io/version.version=$(HELMFILE_VERSION))

$(CHART_VENV)/.installed: tests/chart/requirements.txt
	@command -v $(CHART_PYTHON) >/dev/null || { echo "error: $(CHART_PYTHON) not found; install Python 3.11 (e.g. apt-get install python3.11, or pyenv install 3.11)" >&2; exit 1; }
	rm -rf $(CHART_VENV)
	$(CHART_PYTHON) -m venv $(CHART_VENV)
	$(CHART_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -r tests/chart/requirements.txt
	@touch $@

$(CHART_SCHEMAS)/.built: $(CHART_VENV)/.installed tests/chart/tools/schemas.py mk/chart.mk
	$(require-go)
	$(CHART_PY) tests/chart/tools/schemas.py --out $(CHART_SCHEMAS) --cnpg-version $(CNPG_VERSION) \
		$(foreach v,$(KUBE_VERSIONS),--kube-version $(v))
	@touch $@

chart-tools: $(HELM) $(KUBECONFORM) $(KUBESCORE) $(CHART_VENV)/.installed ## Build the chart check tools into .cache/tools

chart-files: $(CHART_VENV)/.installed ## Copy keycloak-realm/ and superset-auth/ into the chart (before helm install)
	$(CHART_PY) tests/chart/tools/chart.py sync-files --chart $(CHART_DIR) --repo .

# A copy of the chart with the real third-party subcharts in its charts/ (what `helm dependency build`
# would put there; the archives come from THIRD_PARTY_CHARTS, as their repositories publish them),
# rendered with the defaults and with each ci/*-values.yaml. Superset is ours (charts/nbp-lib's
# superset template; the upstream chart is deprecated and runs as root): nothing is left out.
# shared/ sits beside the checkout (the team's charts folder), wherever the checkout is.
THIRD_PARTY_CHARTS ?= $(abspath $(CURDIR)/../shared/charts)
CHART_LEAVE_OUT    ?=
chart-render: $(HELM) $(CHART_VENV)/.installed ## Render the chart (defaults and ci/*-values.yaml) into .cache/chart/render
	$(CHART_PY) tests/chart/tools/chart.py prepare --chart $(CHART_DIR) --repo . --out $(dir $(CHART_PREPARED)) \
		--third-party $(THIRD_PARTY_CHARTS) $(foreach d,$(CHART_LEAVE_OUT),--leave-out $(d))
	$(CHART_PY) tests/chart/tools/chart.py render --helm $(HELM) --chart $(CHART_PREPARED) --out $(CHART_RENDERED)

chart-lint: chart-render ## helm lint --strict, defaults and every ci/*-values.yaml
	$(HELM) lint --strict $(CHART_PREPARED)
	@set -e; for f in $(CHART_PREPARED)/ci/*-values.yaml; do \
		echo "+ helm lint --strict -f $$f"; $(HELM) lint --strict $(CHART_PREPARED) -f $$f; done

chart-validate: chart-render $(KUBECONFORM) $(CHART_SCHEMAS)/.built ## kubeconform -strict against Kubernetes and CNPG schemas
	@set -e; for v in $(KUBE_VERSIONS); do \
		echo "+ kubeconform -strict -kubernetes-version $$v"; \
		$(KUBECONFORM) -strict -summary -kubernetes-version $$v \
			-schema-location '$(abspath $(CHART_SCHEMAS))/k8s/{{ .NormalizedKubernetesVersion }}-standalone-strict/{{ .ResourceKind }}{{ .KindSuffix }}.json' \
			-schema-location '$(abspath $(CHART_SCHEMAS))/crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json' \
			$(CHART_RENDERED)/*.yaml; done

# kube-score with every check, warnings included; exceptions are `kube-score/ignore` annotations on the
# objects, each with its reason beside it (ours in the templates, the subcharts' in values.yaml; for
# third-party objects whose templates take no annotations, tests/chart/kube-score-exemptions.yaml).
CHART_POLICY_INPUT := $(CHART_CACHE)/policy
chart-policy: chart-render $(KUBESCORE) ## kube-score: zero findings
	$(CHART_PY) tests/chart/tools/chart.py policy-input --rendered $(CHART_RENDERED) \
		--exemptions tests/chart/kube-score-exemptions.yaml --out $(CHART_POLICY_INPUT)
	@rc=0; $(KUBESCORE) score --output-format ci --exit-one-on-warning \
		--enable-optional-test container-seccomp-profile \
		--enable-optional-test container-ports-check \
		$(CHART_POLICY_INPUT)/*.yaml > $(CHART_CACHE)/kube-score.txt || rc=$$?; \
	grep -v -e '^\[OK\]' -e '^\[SKIPPED\]' $(CHART_CACHE)/kube-score.txt || true; \
	echo "kube-score: $$(grep -c '^\[OK\]' $(CHART_CACHE)/kube-score.txt) checks ok," \
		"$$(grep -c '^\[WARNING\]' $(CHART_CACHE)/kube-score.txt) warnings," \
		"$$(grep -c '^\[CRITICAL\]' $(CHART_CACHE)/kube-score.txt) critical;" \
		"exempted by kube-score/ignore annotations:"; \
	grep -o 'Skipped because [a-z-]* is ignored' $(CHART_CACHE)/kube-score.txt | \
		grep -v -e 'requests-equal-limits' -e 'request-equals-limit' | sort | uniq -c; \
	exit $$rc

chart-dockerlint: $(CHART_VENV)/.installed ## hadolint the Dockerfile (.hadolint.yaml)
	$(CHART_VENV)/bin/hadolint --config .hadolint.yaml Dockerfile

chart-pytest: chart-render ## pytest over the rendered manifests (tests/chart)
	$(CHART_VENV)/bin/pytest -c tests/chart/pytest.ini tests/chart

chart-test: chart-lint chart-validate chart-policy chart-dockerlint chart-pytest ## Every chart and image check

# `make test` runs every test; the chart's are part of it.
test: chart-test

# --- local cluster (needs Docker; not runnable on machines without it) ----------------------------------
KIND_CLUSTER ?= nbp
IMAGE_PREFIX ?= notebook-platform
IMAGE_TAG    ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/p' $(CHART_DIR)/Chart.yaml)
# The three services, Superset with Authlib and the users' notebook image (Dockerfile targets).
IMAGES       := registry executor history superset notebook
HELMFILE_ENV ?= kind
E2E_URL      ?= http://nbp.localtest.me

define require-docker
	@command -v docker >/dev/null && docker info >/dev/null 2>&1 || { echo "error: a running Docker engine is required (https://docs.docker.com/engine/install/)" >&2; exit 1; }
endef

kind-up: $(KIND) ## Create the kind cluster (ingress ports 80/443 mapped to localhost)
	$(require-docker)
	$(KIND) get clusters | grep -qx '$(KIND_CLUSTER)' || $(KIND) create cluster --name $(KIND_CLUSTER) --config kind/cluster.yaml --wait 120s

kind-down: $(KIND) ## Delete the kind cluster
	$(KIND) delete cluster --name $(KIND_CLUSTER)

images: ## Build the images (one Dockerfile, a target per service, Superset and the notebook image)
	$(require-docker)
	@set -e; for s in $(IMAGES); do \
		echo "+ docker build --target $$s -t $(IMAGE_PREFIX)/$$s:$(IMAGE_TAG) ."; \
		DOCKER_BUILDKIT=1 docker build --target $$s -t $(IMAGE_PREFIX)/$$s:$(IMAGE_TAG) .; done

kind-load: $(KIND) ## Load the images into the kind cluster
	$(require-docker)
	@set -e; for s in $(IMAGES); do $(KIND) load docker-image --name $(KIND_CLUSTER) $(IMAGE_PREFIX)/$$s:$(IMAGE_TAG); done

deploy: $(HELM) $(HELMFILE) chart-files ## helmfile sync (HELMFILE_ENV=kind|production): CNPG operator, ingress-nginx, the platform
	PATH="$(abspath $(dir $(HELM))):$$PATH" $(HELMFILE) --file helmfile.yaml --environment $(HELMFILE_ENV) sync

# kubectl, for the e2e tests' look at the pods (Debian/Ubuntu's package; elsewhere install it yourself).
e2e-tools: $(CHART_VENV)/.installed
	@command -v kubectl >/dev/null || { \
		command -v apt-get >/dev/null || { echo "error: kubectl not found; install it (https://kubernetes.io/docs/tasks/tools/)" >&2; exit 1; }; \
		echo "+ apt-get install -y kubectl"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubectl; }

# The whole end-to-end check on kind, each step in order (each is idempotent: a second `make e2e` reuses
# the cluster and upgrades the release).
e2e: ## kind cluster, images, helmfile deploy, then tests/e2e through the ingress (needs Docker)
	$(MAKE) kind-up
	$(MAKE) images
	$(MAKE) kind-load
	$(MAKE) deploy
	$(MAKE) e2e-test

e2e-test: e2e-tools ## tests/e2e against the platform already deployed (E2E_URL, kubectl's current context)
	NBP_E2E_URL=$(E2E_URL) $(CHART_VENV)/bin/pytest -c tests/e2e/pytest.ini tests/e2e

.PHONY: chart-tools chart-files chart-render chart-lint chart-validate chart-policy chart-dockerlint \
	chart-pytest chart-test test kind-up kind-down images kind-load deploy e2e-tools e2e e2e-test
