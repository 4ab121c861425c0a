"""The platform installed with Helm into a real API server, in helmfile.yaml's order, and taken through
its life: upgrade, test, a second release, uninstall.

helmfile itself is not run: it would first fetch every release's chart from its repository, and none is
reachable here. The releases are installed in the order helmfile.yaml gives (checked below) from the
local archives: `cnpg` (the operator chart, its CRDs), then `nbp`. `ingress-nginx` has no archive here
and is not installed; without a controller the Ingress is still admitted and stored.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import (
    CHART,
    CNPG_NAMESPACE,
    RELEASE,
    REPO,
    Helm,
    Kube,
    StandInKubelet,
    matches,
    ref,
    secret_data,
    variants,
)

VARIANTS = list(variants(CHART)) if CHART.is_dir() else ["default"]
# Secrets that Helm keeps on uninstall (helm.sh/resource-policy: keep), as the README says: the generated
# credentials, and the workspace claim (the users' files).
KEPT = {
    ("Secret", f"{RELEASE}-db-registry"),
    ("Secret", f"{RELEASE}-db-executor"),
    ("Secret", f"{RELEASE}-db-history"),
    ("Secret", f"{RELEASE}-db-superset-ro"),
    ("Secret", f"{RELEASE}-db-superset"),
    ("Secret", f"{RELEASE}-db-keycloak"),
    ("Secret", f"{RELEASE}-keycloak-admin"),
    ("Secret", f"{RELEASE}-superset-secret-key"),
    ("Secret", "nbp-oidc-clients"),
    ("PersistentVolumeClaim", "nbp-workspace"),
}


def namespace_of(variant: str) -> str:
    return f"nbp-{variant}"


def release_objects(kube: Kube, namespace: str) -> set[tuple[str, str]]:
    """What exists in a namespace that no controller made and Kubernetes or Helm did not add itself."""
    objects = kube.namespaced_objects(namespace)
    services = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    found = set()
    for obj in objects:
        meta, kind = obj["metadata"], obj["kind"]
        if meta.get("ownerReferences") or kind == "Event":
            continue  # made by a controller (ReplicaSets, Pods, EndpointSlices, ...)
        if (kind, meta["name"]) in {("ServiceAccount", "default"), ("ConfigMap", "kube-root-ca.crt")}:
            continue  # every namespace has them
        if kind == "Endpoints" and meta["name"] in services:
            continue  # the endpoints controller's, one per Service
        if kind == "Secret" and obj.get("type") == "helm.sh/release.v1":
            continue  # Helm's record of the release
        found.add((kind, meta["name"]))
    return found


@pytest.fixture(scope="session")
def installed(helm: Helm, kube: Kube, chart: Path, cnpg_operator: str) -> dict[str, str]:
    """Every variant (defaults, each ci/*-values.yaml) installed as release `nbp` in its own namespace."""
    for variant, args in variants(chart).items():
        helm.ok(
            "install", RELEASE, str(chart), "--namespace", namespace_of(variant), "--create-namespace", *args
        )
    return {variant: namespace_of(variant) for variant in variants(chart)}


def test_releases_follow_helmfile_order() -> None:
    helmfile = yaml.safe_load((REPO / "helmfile.yaml").read_text())
    releases = {r["name"]: r for r in helmfile["releases"]}
    assert releases["cnpg"]["chart"].endswith("/cloudnative-pg")
    assert releases["cnpg"]["version"] == "0.26.1", "the archive the tests install"
    assert releases["cnpg"]["namespace"] == CNPG_NAMESPACE
    assert f"{CNPG_NAMESPACE}/cnpg" in releases["nbp"]["needs"], "the platform after the operator"


def test_operator_chart_installs_its_crds_without_webhook_configurations(
    helm: Helm, kube: Kube, cnpg_operator: str
) -> None:
    kinds = {doc["kind"] for doc in helm.manifest("cnpg", cnpg_operator)}
    assert {"CustomResourceDefinition", "Deployment", "ClusterRole"} <= kinds
    # left out on purpose (see conftest.cnpg_operator): no operator runs to serve them
    assert not kinds & {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
    for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        assert kube.items(f"/apis/admissionregistration.k8s.io/v1/{kind}") == []
    (operator,) = kube.items(f"/apis/apps/v1/namespaces/{cnpg_operator}/deployments")
    assert operator["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "cloudnative-pg"


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_object_is_admitted(helm: Helm, kube: Kube, installed: dict[str, str], variant: str) -> None:
    namespace = installed[variant]
    manifest = helm.manifest(RELEASE, namespace)
    assert len(manifest) > 20
    for doc in manifest:
        scope = doc["metadata"].get("namespace", namespace)
        assert scope == namespace, f"{ref(doc)} in namespace {scope}"
        assert kube.exists(kube.path(doc["apiVersion"], doc["kind"], namespace, doc["metadata"]["name"])), (
            ref(doc)
        )
    assert release_objects(kube, namespace) == {ref(doc) for doc in manifest}


def test_the_crd_schema_refuses_an_invalid_cluster(kube: Kube, installed: dict[str, str]) -> None:
    namespace = installed["default"]
    path = f"/apis/postgresql.cnpg.io/v1/namespaces/{namespace}/clusters"
    (cluster,) = kube.items(path)
    assert cluster["metadata"]["name"] == f"{RELEASE}-db"
    bad = {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "invalid"},
        "spec": {"instances": "three", "storage": {"size": "1Gi"}},
    }
    response = kube.post(path, bad)
    assert response.status_code == 422, response.text
    assert "spec.instances" in response.text


# --- upgrade, test, uninstall -------------------------------------------------------------------------


@dataclass
class Lifecycle:
    namespace: str
    secrets: list[dict[str, dict[str, bytes]]] = field(default_factory=list)
    objects: list[set[tuple[str, str]]] = field(default_factory=list)
    manifests: list[set[tuple[str, str]]] = field(default_factory=list)
    kept: set[tuple[str, str]] = field(default_factory=set)
    left: set[tuple[str, str]] = field(default_factory=set)


@pytest.fixture(scope="session")
def lifecycle(helm: Helm, kube: Kube, chart: Path, cnpg_operator: str) -> Lifecycle:
    """Install with the defaults, upgrade to one replica of each service (so no PodDisruptionBudgets),
    upgrade again, uninstall; what exists is recorded after each step."""
    record = Lifecycle("nbp-lifecycle")
    one_replica = [f"--set={service}.replicas=1" for service in ("registry", "executor", "history")]
    steps = [("install", []), ("upgrade", one_replica), ("upgrade", one_replica)]
    for command, args in steps:
        create = ["--create-namespace"] if command == "install" else []
        helm.ok(command, RELEASE, str(chart), "--namespace", record.namespace, *create, *args)
        manifest = helm.manifest(RELEASE, record.namespace)
        record.manifests.append({ref(doc) for doc in manifest})
        record.objects.append(release_objects(kube, record.namespace))
        record.secrets.append(secret_data(kube, record.namespace))
        record.kept = {
            ref(doc)
            for doc in manifest
            if doc["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep"
        }
    helm.ok("uninstall", RELEASE, "--namespace", record.namespace, "--wait", "--timeout", "120s")
    record.left = release_objects(kube, record.namespace)
    return record


def test_upgrades_keep_every_secret_byte_for_byte(lifecycle: Lifecycle) -> None:
    installed, first, second = lifecycle.secrets
    # ours (generated once, looked up on upgrade) and z2jh's own `hub` (the same mechanism in its chart)
    assert {("Secret", name) for name in installed} == {k for k in KEPT if k[0] == "Secret"} | {
        ("Secret", "hub")
    }
    assert first == installed
    assert second == installed


def test_objects_are_exactly_the_rendered_ones_after_each_step(lifecycle: Lifecycle) -> None:
    for objects, manifest in zip(lifecycle.objects, lifecycle.manifests, strict=True):
        assert objects == manifest, {"orphans": objects - manifest, "missing": manifest - objects}
    # the upgrade to one replica each removed the PodDisruptionBudgets it no longer renders
    assert {k for k in lifecycle.objects[0] if k[0] == "PodDisruptionBudget"}
    assert not {k for k in lifecycle.objects[1] if k[0] == "PodDisruptionBudget"}


def test_uninstall_leaves_the_kept_secrets_and_the_workspace_only(lifecycle: Lifecycle) -> None:
    assert lifecycle.kept == KEPT
    assert lifecycle.left == KEPT


def test_helm_test_pods_are_admitted_and_well_formed(
    helm: Helm, kube: Kube, installed: dict[str, str]
) -> None:
    namespace = installed["default"]
    hooks = [d for d in yaml.safe_load_all(helm.ok("get", "hooks", RELEASE, "--namespace", namespace)) if d]
    expected = {
        d["metadata"]["name"] for d in hooks if d["metadata"]["annotations"]["helm.sh/hook"] == "test"
    }
    (policy,) = [
        p
        for p in kube.items(f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies")
        if p["metadata"]["name"] == f"{RELEASE}-tests"
    ]
    inspected: dict[str, dict[str, Any]] = {}

    def inspect(pod: dict[str, Any]) -> None:
        spec = pod["spec"]
        assert spec["restartPolicy"] == "Never"
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec["containers"]:
            assert ":" in container["image"].rsplit("/", 1)[-1], container["image"]
            assert container.get("command") or container.get("args"), container["name"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["resources"]["limits"], container["name"]
        assert matches(policy["spec"]["podSelector"], pod["metadata"]["labels"]), "nbp-tests selects it"
        inspected[pod["metadata"]["name"]] = pod

    with StandInKubelet(kube, namespace, inspect) as kubelet:
        proc = helm.run("test", RELEASE, "--namespace", namespace, "--timeout", "120s", timeout=180)
    assert not kubelet.errors, kubelet.errors
    assert proc.returncode == 0, proc.stderr
    assert set(inspected) == expected
    assert len(expected) >= 4


# --- a second release -----------------------------------------------------------------------------------


def test_a_second_release_installs_in_another_namespace(
    helm: Helm, kube: Kube, installed: dict[str, str]
) -> None:
    helm.ok("install", "team-b", str(CHART), "--namespace", "nbp-second", "--create-namespace")
    first = {ref(d) for d in helm.manifest(RELEASE, installed["default"])}
    second = {ref(d) for d in helm.manifest("team-b", "nbp-second")}
    assert len(second) == len(first)
    assert release_objects(kube, "nbp-second") == second
    status = json.loads(helm.ok("status", RELEASE, "--namespace", installed["default"], "--output", "json"))
    assert status["info"]["status"] == "deployed"


def test_a_second_release_in_the_same_namespace_is_refused(helm: Helm, installed: dict[str, str]) -> None:
    """README: one platform per namespace (JupyterHub's chart uses fixed resource names)."""
    proc = helm.run("install", "team-c", str(CHART), "--namespace", installed["default"])
    assert proc.returncode != 0
    assert "exists and cannot be imported into the current release" in proc.stderr


# --- who may do what ------------------------------------------------------------------------------------


def allowed(
    kube: Kube, namespace: str, account: str, verb: str, resource: str, group: str = "", where: str = ""
) -> bool:
    """A SubjectAccessReview: may ServiceAccount `account` of `namespace` do `verb` on `resource` (a
    subresource after a slash: pods/exec) in namespace `where` (default: its own; "*": cluster-wide)?"""
    resource, _, subresource = resource.partition("/")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{namespace}:{account}",
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{namespace}",
                "system:authenticated",
            ],
            "resourceAttributes": {
                "namespace": "" if where == "*" else (where or namespace),
                "verb": verb,
                "group": group,
                "resource": resource,
                "subresource": subresource,
            },
        },
    }
    response = kube.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
    assert response.status_code == 201, response.text
    return bool(response.json()["status"].get("allowed"))


def test_service_accounts_may_do_what_their_roles_say_and_nothing_else(
    kube: Kube, installed: dict[str, str]
) -> None:
    namespace = installed["default"]
    roles = {
        r["metadata"]["name"]: r
        for r in kube.items(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles")
    }
    bindings = kube.items(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings")
    bound = {
        subject["name"]: roles[binding["roleRef"]["name"]]
        for binding in bindings
        for subject in binding["subjects"]
        if subject["kind"] == "ServiceAccount"
    }
    assert "hub" in bound, "KubeSpawner's account"
    accounts = {a["metadata"]["name"] for a in kube.items(f"/api/v1/namespaces/{namespace}/serviceaccounts")}
    for account in sorted(accounts):
        granted = {
            (group, resource, verb)
            for rule in (bound[account]["rules"] if account in bound else [])
            for group in rule["apiGroups"]
            for resource in rule["resources"]
            for verb in rule["verbs"]
        }
        for group, resource, verb in granted:
            assert allowed(kube, namespace, account, verb, resource, group), (account, verb, resource)
            other = installed["minimal"]
            assert not allowed(kube, namespace, account, verb, resource, group, where=other), (
                account,
                "elsewhere",
            )
        for group, resource, verb in [
            ("", "pods", "create"),
            ("", "secrets", "get"),
            ("", "configmaps", "update"),
            ("apps", "deployments", "patch"),
            ("rbac.authorization.k8s.io", "roles", "create"),
        ]:
            if (group, resource, verb) not in granted:
                assert not allowed(kube, namespace, account, verb, resource, group), (account, verb, resource)


# The executor's rights (the kubernetes runner: a Pod per run) - exactly these, in its own namespace.
EXECUTOR_MAY = [("", "pods", verb) for verb in ("create", "get", "list", "watch", "delete")]
EXECUTOR_MAY_NOT = [
    ("", "pods", "update"),
    ("", "pods", "patch"),
    ("", "pods", "deletecollection"),
    ("", "pods/exec", "create"),
    ("", "pods/attach", "create"),
    ("", "pods/portforward", "create"),
    ("", "pods/ephemeralcontainers", "patch"),
    ("", "pods/status", "patch"),
    ("", "pods/log", "get"),
    ("", "secrets", "get"),
    ("", "secrets", "list"),
    ("", "secrets", "watch"),
    ("", "secrets", "create"),
    ("", "configmaps", "get"),
    ("", "serviceaccounts", "get"),
    ("", "serviceaccounts/token", "create"),
    ("", "persistentvolumeclaims", "create"),
    ("", "services", "create"),
    ("", "events", "create"),
    ("batch", "jobs", "create"),
    ("apps", "deployments", "patch"),
    ("rbac.authorization.k8s.io", "roles", "create"),
    ("rbac.authorization.k8s.io", "rolebindings", "create"),
    ("networking.k8s.io", "networkpolicies", "delete"),
    ("postgresql.cnpg.io", "clusters", "get"),
]


def test_the_executor_manages_pods_in_its_namespace_and_nothing_else(
    kube: Kube, installed: dict[str, str]
) -> None:
    namespace, account = installed["default"], f"{RELEASE}-executor"
    for group, resource, verb in EXECUTOR_MAY:
        assert allowed(kube, namespace, account, verb, resource, group), (verb, resource)
        for elsewhere in (installed["minimal"], "kube-system", CNPG_NAMESPACE, "default", "*"):
            assert not allowed(kube, namespace, account, verb, resource, group, where=elsewhere), (
                verb,
                resource,
                elsewhere,
            )
    for group, resource, verb in EXECUTOR_MAY_NOT:
        assert not allowed(kube, namespace, account, verb, resource, group), (verb, resource)
    for group, resource, verb in [("", "nodes", "list"), ("", "namespaces", "get"), ("", "pods", "list")]:
        assert not allowed(kube, namespace, account, verb, resource, group, where="*"), (verb, resource)


def test_the_hub_reads_no_secret(kube: Kube, installed: dict[str, str]) -> None:
    """z2jh's own Role would let the hub read every Secret (the platform's passwords among them); ours
    gives KubeSpawner what it uses and no Secret."""
    namespace = installed["default"]
    assert allowed(kube, namespace, "hub", "create", "pods")
    assert allowed(kube, namespace, "hub", "watch", "events")
    for verb in ("get", "list", "watch", "create", "delete"):
        assert not allowed(kube, namespace, "hub", verb, "secrets"), verb


# --- a run pod, made as the executor makes it ----------------------------------------------------------

# The labels the kubernetes runner gives each run pod (services/executor), which the chart's NetworkPolicy
# <release>-notebook-runs selects on.
RUN_LABELS = {
    "app.kubernetes.io/part-of": "notebook-platform",
    "app.kubernetes.io/instance": RELEASE,
    "app.kubernetes.io/component": "notebook-run",
    "app.kubernetes.io/managed-by": "nbp-executor",
    "nbp.dev/execution-id": "4242",
    "nbp.dev/username": "alice",
}


def run_pod_manifest(name: str, labels: dict[str, str]) -> dict[str, Any]:
    """A run's Pod in the shape the runner gives it: its owner's folder only, no token, no secret."""
    locked = {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 100,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "activeDeadlineSeconds": 3600,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "papermill",
                    "image": "notebook-platform/notebook:0.1.0",
                    "command": ["python", "-m", "papermill", "report.ipynb", "out/report.ipynb"],
                    "workingDir": "/home/alice",
                    "securityContext": locked,
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "512Mi"},
                        "limits": {"cpu": "2", "memory": "4Gi"},
                    },
                    "volumeMounts": [
                        {"name": "home", "mountPath": "/home/alice", "subPath": "alice"},
                        {"name": "tmp", "mountPath": "/tmp"},
                    ],
                }
            ],
            "volumes": [
                {"name": "home", "persistentVolumeClaim": {"claimName": "nbp-workspace"}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            ],
        },
    }


def as_account(namespace: str, account: str) -> list[tuple[str, str]]:
    """Headers that make the administrator's request one of ServiceAccount `account` (impersonation)."""
    return [
        ("Impersonate-User", f"system:serviceaccount:{namespace}:{account}"),
        ("Impersonate-Group", "system:serviceaccounts"),
        ("Impersonate-Group", f"system:serviceaccounts:{namespace}"),
        ("Impersonate-Group", "system:authenticated"),
    ]


@pytest.fixture
def run_pods(kube: Kube, installed: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
    """Two runs' Pods (alice's and bob's) created AS the executor's ServiceAccount, deleted afterwards."""
    namespace = installed["default"]
    executor = as_account(namespace, f"{RELEASE}-executor")
    pods_path = f"/api/v1/namespaces/{namespace}/pods"
    created = []
    try:
        for name, execution, user in (("nbp-run-4242", "4242", "alice"), ("nbp-run-4243", "4243", "bob")):
            labels = {**RUN_LABELS, "nbp.dev/execution-id": execution, "nbp.dev/username": user}
            response = kube.http.post(pods_path, json=run_pod_manifest(name, labels), headers=executor)
            assert response.status_code == 201, response.text
            created.append(response.json())
        yield created
    finally:
        for pod in created:
            kube.http.delete(f"{pods_path}/{pod['metadata']['name']}", params={"gracePeriodSeconds": 0})


def test_the_executor_creates_and_deletes_run_pods_and_nothing_else(
    kube: Kube, installed: dict[str, str], run_pods: list[dict[str, Any]]
) -> None:
    namespace = installed["default"]
    executor = as_account(namespace, f"{RELEASE}-executor")
    pods_path = f"/api/v1/namespaces/{namespace}/pods"
    listed = kube.http.get(
        pods_path, params={"labelSelector": "app.kubernetes.io/component=notebook-run"}, headers=executor
    )
    assert listed.status_code == 200, listed.text
    assert {p["metadata"]["name"] for p in listed.json()["items"]} == {"nbp-run-4242", "nbp-run-4243"}
    for method, path, body in [
        ("GET", f"/api/v1/namespaces/{namespace}/secrets", None),
        ("GET", f"/api/v1/namespaces/{namespace}/secrets/nbp-oidc-clients", None),
        (
            "POST",
            f"/api/v1/namespaces/{namespace}/secrets",
            {"metadata": {"name": "x"}, "stringData": {"a": "b"}},
        ),
        (
            "POST",
            f"/api/v1/namespaces/{installed['minimal']}/pods",
            run_pod_manifest("elsewhere", RUN_LABELS),
        ),
        ("PATCH", f"{pods_path}/nbp-run-4242", {"metadata": {"labels": {"nbp.dev/username": "bob"}}}),
    ]:
        extra = [("Content-Type", "application/merge-patch+json")] if method == "PATCH" else []
        response = kube.http.request(method, path, json=body, headers=executor + extra)
        assert response.status_code == 403, (method, path, response.status_code)
    gone = kube.http.delete(f"{pods_path}/nbp-run-4243", params={"gracePeriodSeconds": 0}, headers=executor)
    assert gone.status_code == 200, gone.text


# --- network policies against real pods ---------------------------------------------------------------

# Which workloads' pods each NetworkPolicy selects. Four select pods that are never created here: the
# database's (the CloudNativePG operator makes them), JupyterHub's single-user servers (KubeSpawner makes
# them) and the history retention CronJob's (made at its schedule only); the tests' pods are checked in
# the helm test above. Superset's init Job is named by the release revision: its entry is filled in by
# the test.
SELECTS = {
    "hub": {"Deployment/hub"},
    "proxy": {"Deployment/proxy"},
    "singleuser": set(),
    f"{RELEASE}-db": set(),
    f"{RELEASE}-keycloak": {f"StatefulSet/{RELEASE}-keycloakx"},
    f"{RELEASE}-registry": {f"Deployment/{RELEASE}-registry"},
    f"{RELEASE}-executor": {f"Deployment/{RELEASE}-executor"},
    f"{RELEASE}-history": {f"Deployment/{RELEASE}-history"},
    f"{RELEASE}-history-retention": set(),
    f"{RELEASE}-superset": {f"Deployment/{RELEASE}-superset"},
    f"{RELEASE}-superset-init": set(),
    f"{RELEASE}-tests": set(),
    f"{RELEASE}-notebook-runs": set(),  # the executor's run pods: test_run_pods_reach_dns_and_the_api_only
    # JupyterHub's servers again: test_notebooks_reach_the_platform_address_through_the_ingress_controller
    f"{RELEASE}-singleuser-platform-address": set(),
}
# (from, to, port): the connections the platform needs, each allowed by the destination's ingress rules
ALLOWED = [
    (f"Deployment/{RELEASE}-registry", "keycloak", 8080),
    (f"Deployment/{RELEASE}-executor", "keycloak", 8080),
    (f"Deployment/{RELEASE}-history", "keycloak", 8080),
    ("Deployment/hub", "keycloak", 8080),
    (f"Deployment/{RELEASE}-registry", "db", 5432),
    (f"Deployment/{RELEASE}-executor", "db", 5432),
    (f"Deployment/{RELEASE}-history", "db", 5432),
    (f"StatefulSet/{RELEASE}-keycloakx", "db", 5432),
    (f"Deployment/{RELEASE}-executor", "registry", 8000),
    (f"Deployment/{RELEASE}-superset", "db", 5432),
    (f"Deployment/{RELEASE}-superset", "keycloak", 8080),
    ("Deployment/proxy", "hub", 8081),
    ("Deployment/hub", "proxy", 8001),
]
# ... and some it must not have
REFUSED = [
    ("Deployment/proxy", "db", 5432),
    ("Deployment/proxy", "keycloak", 8080),
    ("Deployment/hub", "db", 5432),
    (f"StatefulSet/{RELEASE}-keycloakx", "registry", 8000),
    (f"Deployment/{RELEASE}-history", "registry", 8000),
    (f"Deployment/{RELEASE}-superset", "registry", 8000),
    (f"Deployment/{RELEASE}-superset", "history", 8000),
]


def workload_pods(kube: Kube, namespace: str) -> dict[str, list[dict[str, Any]]]:
    """The controller-manager's pods, by the workload that owns them (Deployment via its ReplicaSet)."""
    replicasets = {
        rs["metadata"]["name"]: rs["metadata"]["ownerReferences"][0]
        for rs in kube.items(f"/apis/apps/v1/namespaces/{namespace}/replicasets")
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for pod in kube.items(f"/api/v1/namespaces/{namespace}/pods"):
        owners = pod["metadata"].get("ownerReferences", [])
        if not owners:
            continue
        owner = owners[0]
        if owner["kind"] == "ReplicaSet":
            owner = replicasets[owner["name"]]
        out.setdefault(f"{owner['kind']}/{owner['name']}", []).append(pod)
    return out


def admits(policy: dict[str, Any], source: dict[str, str], port: int, named: dict[str, int]) -> bool:
    """Whether a policy's ingress rules let a pod with `source` labels (same namespace) in on `port`;
    `named` resolves the destination pods' named ports."""
    for rule in policy["spec"].get("ingress", []):
        peers = rule.get("from")
        peer_ok = peers is None or any(
            "namespaceSelector" not in peer and "ipBlock" not in peer and matches(peer["podSelector"], source)
            for peer in peers
        )
        ports = rule.get("ports")
        port_ok = ports is None or any(named.get(str(p.get("port")), p.get("port")) == port for p in ports)
        if peer_ok and port_ok:
            return True
    return False


def test_network_policies_select_the_pods_they_claim(kube: Kube, installed: dict[str, str]) -> None:
    namespace = installed["default"]
    workloads = {
        f"{kind}/{w['metadata']['name']}": w["spec"]["replicas"]
        for kind, plural in (("Deployment", "deployments"), ("StatefulSet", "statefulsets"))
        for w in kube.items(f"/apis/apps/v1/namespaces/{namespace}/{plural}")
    }

    jobs = {f"Job/{j['metadata']['name']}" for j in kube.items(f"/apis/batch/v1/namespaces/{namespace}/jobs")}
    selects = {**SELECTS, f"{RELEASE}-superset-init": jobs}

    def all_created() -> bool:
        pods = workload_pods(kube, namespace)
        return all(len(pods.get(name, [])) == replicas for name, replicas in workloads.items()) and all(
            pods.get(job) for job in jobs
        )

    kube.wait("the controller-manager to create every workload's pods", all_created, seconds=120)
    pods = workload_pods(kube, namespace)
    assert all(p["status"]["phase"] == "Pending" for ps in pods.values() for p in ps), "no kubelet here"
    policies = {
        p["metadata"]["name"]: p
        for p in kube.items(f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies")
    }
    assert len(jobs) == 1, jobs  # the current revision's; Helm removed any earlier one
    assert next(iter(jobs)).startswith(f"Job/{RELEASE}-superset-init-")
    assert set(policies) == set(selects)
    for name, policy in policies.items():
        selected = {
            workload
            for workload, members in pods.items()
            for pod in members
            if matches(policy["spec"]["podSelector"], pod["metadata"]["labels"])
        }
        assert selected == selects[name], name
    unselected = set(pods) - set().union(*selects.values())
    assert not unselected, f"pods no NetworkPolicy selects: {unselected}"

    def check(source: str, destination: str, port: int) -> bool:
        policy = policies[destination if destination in {"hub", "proxy"} else f"{RELEASE}-{destination}"]
        targets = [
            pod
            for members in pods.values()
            for pod in members
            if matches(policy["spec"]["podSelector"], pod["metadata"]["labels"])
        ]
        named = {
            p["name"]: p["containerPort"]
            for pod in targets
            for c in pod["spec"]["containers"]
            for p in c.get("ports", [])
            if "name" in p
        }
        verdicts = {admits(policy, pod["metadata"]["labels"], port, named) for pod in pods[source]}
        assert len(verdicts) == 1, (source, "pods of one workload disagree")
        return verdicts.pop()

    for source, destination, port in ALLOWED:
        assert check(source, destination, port), (source, destination, port)
    for source, destination, port in REFUSED:
        assert not check(source, destination, port), (source, destination, port)


# A network address in the pod network (kind's pod CIDR): our ipBlocks except every private range, so
# any private pod network gives the same verdicts.
POD_ADDRESS = IPv4Network("10.244.0.7/32")


def _peer_is(peer: dict[str, Any], labels: dict[str, str], namespace: dict[str, str] | None) -> bool:
    """Whether a NetworkPolicyPeer covers a pod with these labels: of the policy's namespace when
    `namespace` is None, else of the namespace with those labels."""
    if "namespaceSelector" in peer:
        if namespace is None:
            return False  # every namespaceSelector of ours names another namespace
        return matches(peer["namespaceSelector"], namespace) and matches(peer.get("podSelector", {}), labels)
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        excepted = any(POD_ADDRESS.subnet_of(IPv4Network(e)) for e in block.get("except", []))
        return POD_ADDRESS.subnet_of(IPv4Network(block["cidr"])) and not excepted
    return namespace is None and matches(peer["podSelector"], labels)


def _rules_allow(
    rules: list[dict[str, Any]],
    side: str,
    labels: dict[str, str],
    port: int,
    namespace: dict[str, str] | None = None,
) -> bool:
    for rule in rules:
        peers = rule.get(side)
        ports = rule.get("ports")
        if (peers is None or any(_peer_is(peer, labels, namespace) for peer in peers)) and (
            ports is None or any(p.get("port") == port for p in ports)
        ):
            return True
    return False


def connects(
    policies: list[dict[str, Any]],
    source: dict[str, str],
    destination: dict[str, str],
    port: int,
    elsewhere: dict[str, str] | None = None,
) -> bool:
    """Kubernetes' rule: a connection between two pods (labels) of one namespace is allowed when every side
    that policies select is allowed by at least one of them (egress of the source, ingress of the
    destination). With `elsewhere` (its namespace's labels) the destination is in another namespace, where
    no policy selects it: only the source's egress counts."""
    if elsewhere is not None:
        applying = [
            p["spec"]
            for p in policies
            if "Egress" in p["spec"]["policyTypes"] and matches(p["spec"]["podSelector"], source)
        ]
        return not applying or any(
            _rules_allow(p.get("egress", []), "to", destination, port, elsewhere) for p in applying
        )
    for side, selected, other, direction in (
        ("to", source, destination, "Egress"),
        ("from", destination, source, "Ingress"),
    ):
        applying = [
            p["spec"]
            for p in policies
            if direction in p["spec"]["policyTypes"] and matches(p["spec"]["podSelector"], selected)
        ]
        key = direction.lower()
        if applying and not any(_rules_allow(p.get(key, []), side, other, port) for p in applying):
            return False
    return True


def test_run_pods_reach_dns_and_the_api_only(
    kube: Kube, installed: dict[str, str], run_pods: list[dict[str, Any]]
) -> None:
    """The run pods the executor made (with the runner's labels) against the NetworkPolicies the API server
    stores and the pods the controller-manager made: DNS and the platform's API, nothing else."""
    namespace = installed["default"]
    policies = kube.items(f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies")
    alice, bob = (pod["metadata"]["labels"] for pod in run_pods)
    selecting = {p["metadata"]["name"] for p in policies if matches(p["spec"]["podSelector"], alice)}
    assert selecting == {f"{RELEASE}-notebook-runs"}
    others = {
        name: pods[0]["metadata"]["labels"]
        for name, pods in workload_pods(kube, namespace).items()
        if not name.startswith("Job/")
    }
    assert not [n for n, labels in others.items() if matches({"matchLabels": RUN_LABELS}, labels)]
    # the database's pods (the CloudNativePG operator would make them; it does not run here): the labels
    # its policy selects them by
    (db_policy,) = [p for p in policies if p["metadata"]["name"] == f"{RELEASE}-db"]
    others["database"] = db_policy["spec"]["podSelector"]["matchLabels"]
    kube_dns = {"k8s-app": "kube-dns"}  # in kube-system: egress on port 53 goes to any address
    assert connects(policies, alice, kube_dns, 53)
    for api in ("registry", "executor", "history"):
        assert connects(policies, alice, others[f"Deployment/{RELEASE}-{api}"], 8000), api
    refused = [
        ("database", 5432),
        (f"StatefulSet/{RELEASE}-keycloakx", 8080),  # Keycloak: tokens and its admin side
        (f"StatefulSet/{RELEASE}-keycloakx", 9000),  # its management port
        ("Deployment/hub", 8081),
        ("Deployment/proxy", 8000),
        ("Deployment/proxy", 8001),
        (f"Deployment/{RELEASE}-superset", 8088),
        (f"Deployment/{RELEASE}-registry", 9090),  # the API pods on any other port
    ]
    for target, port in refused:
        assert not connects(policies, alice, others[target], port), (target, port)
    # runs are reached by no one: not another run, not the platform's pods
    assert not connects(policies, bob, alice, 8888)
    for name, labels in others.items():
        assert not connects(policies, labels, alice, 8888), name


def test_notebooks_reach_the_platform_address_through_the_ingress_controller(
    kube: Kube, installed: dict[str, str], run_pods: list[dict[str, Any]]
) -> None:
    """NBP_URL is the ingress: from a run pod and from a JupyterHub server (the labels z2jh's `singleuser`
    policy selects, with the chart's extra labels) the ingress controller's pods answer on http and https
    (networkPolicy.platformAddressEgress), and nothing else of the controller's namespace, no other port,
    and for the server still nothing private of the platform but the API."""
    namespace = installed["default"]
    policies = kube.items(f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies")
    (z2jh,) = [p for p in policies if p["metadata"]["name"] == "singleuser"]
    server = {
        **z2jh["spec"]["podSelector"]["matchLabels"],
        "hub.jupyter.org/username": "alice",
        "hub.jupyter.org/network-access-hub": "true",
        "notebook-platform/access-api": "true",
    }
    selecting = {p["metadata"]["name"] for p in policies if matches(p["spec"]["podSelector"], server)}
    assert selecting == {"singleuser", f"{RELEASE}-singleuser-platform-address"}
    # the controller's namespace as the API server labels it (helmfile installs ingress-nginx there)
    made = kube.post("/api/v1/namespaces", {"metadata": {"name": "ingress-nginx"}})
    assert made.status_code == 201, made.text
    try:
        ingress_namespace = kube.http.get("/api/v1/namespaces/ingress-nginx").json()["metadata"]["labels"]
        controller = {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}
        other = {"app.kubernetes.io/name": "default-backend"}
        for source in (run_pods[0]["metadata"]["labels"], server):
            for port in (80, 443):
                assert connects(policies, source, controller, port, ingress_namespace), (source, port)
            assert not connects(policies, source, controller, 10254, ingress_namespace)  # its metrics
            assert not connects(policies, source, other, 443, ingress_namespace)
            # the same labels in our namespace are not the controller
            assert not connects(policies, source, controller, 443)
        api = {"notebook-platform/api": "true", "app.kubernetes.io/instance": RELEASE}
        assert connects(policies, server, api, 8000)
        (db_policy,) = [p for p in policies if p["metadata"]["name"] == f"{RELEASE}-db"]
        (keycloak_policy,) = [p for p in policies if p["metadata"]["name"] == f"{RELEASE}-keycloak"]
        assert not connects(policies, server, db_policy["spec"]["podSelector"]["matchLabels"], 5432)
        assert not connects(policies, server, keycloak_policy["spec"]["podSelector"]["matchLabels"], 8080)
    finally:
        kube.http.delete("/api/v1/namespaces/ingress-nginx")


def test_pods_stay_pending_without_a_kubelet(kube: Kube, installed: dict[str, str]) -> None:
    """What this control plane is not: nothing schedules or runs the pods (README, make cluster)."""
    pods = kube.items(f"/api/v1/namespaces/{installed['default']}/pods")
    assert pods
    assert {p["status"].get("phase") for p in pods} == {"Pending"}
    assert not any(p["spec"].get("nodeName") for p in pods)


# --- Helm's `lookup` against the real API server ------------------------------------------------------


def test_existing_secret_values_are_reused_and_missing_ones_generated(
    helm: Helm, kube: Kube, chart: Path
) -> None:
    """Secrets that exist before the first install (made by hand, or left by an uninstall) keep their
    values; a key missing from one is generated, and so are Secrets that do not exist yet."""
    namespace = "nbp-lookup"
    assert kube.post("/api/v1/namespaces", {"metadata": {"name": namespace}}).status_code == 201
    for name, data in {
        f"{RELEASE}-db-registry": {"username": "nbp_registry", "password": "kept-registry-pw"},
        "nbp-oidc-clients": {"jupyterhub": "kept-hub", "superset": "kept-superset"},
    }.items():
        secret = {"metadata": {"name": name}, "type": "Opaque", "stringData": data}
        assert kube.post(f"/api/v1/namespaces/{namespace}/secrets", secret).status_code == 201

    def render() -> dict[str, dict[str, bytes]]:
        args = ["template", RELEASE, str(chart), "--namespace", namespace, "--dry-run=server"]
        docs = [d for d in yaml.safe_load_all(helm.ok(*args, "--show-only", "templates/secrets.yaml")) if d]
        return {d["metadata"]["name"]: {k: base64.b64decode(v) for k, v in d["data"].items()} for d in docs}

    first, second = render(), render()
    assert first[f"{RELEASE}-db-registry"]["password"] == b"kept-registry-pw"
    assert first["nbp-oidc-clients"]["jupyterhub"] == b"kept-hub"
    assert first["nbp-oidc-clients"]["superset"] == b"kept-superset"
    assert len(first["nbp-oidc-clients"]["nbp-executor"]) == 32
    # nothing stored yet for these: generated anew on each render
    assert first[f"{RELEASE}-db-history"]["password"] != second[f"{RELEASE}-db-history"]["password"]
