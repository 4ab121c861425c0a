# mypy: disable-error-code="import-not-found"
# (pytest puts tests/chart on sys.path to share conftest's helpers; mypy names it tests.chart.conftest)
"""How the pieces are wired: database, the three services, Keycloak's realm, JupyterHub, Superset, tests."""

from __future__ import annotations

import ast
import base64
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import CHART_SRC, RELEASE, REPO, by_kind, containers, env_map, is_ours, one

SERVICES = ("registry", "executor", "history")
ROLES = {"nbp_registry", "nbp_executor", "nbp_history", "superset_ro", "superset", "keycloak"}


def deployment(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found: dict[str, Any] = one(docs, "Deployment", f"{RELEASE}-{name}")
    return found


def main_container(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    container: dict[str, Any] = deployment(docs, name)["spec"]["template"]["spec"]["containers"][0]
    return container


# --- database -----------------------------------------------------------------------------------------


def test_cnpg_cluster_roles_and_databases(default: list[dict[str, Any]]) -> None:
    cluster = one(default, "Cluster", f"{RELEASE}-db")["spec"]
    assert cluster["bootstrap"]["initdb"]["database"] == "notebook_manager"
    assert cluster["enableSuperuserAccess"] is False
    roles = {r["name"]: r for r in cluster["managed"]["roles"]}
    assert set(roles) == {*ROLES, "history_reader"}  # the last one without login (below)
    del roles["history_reader"]
    secrets = {s["metadata"]["name"]: s for s in by_kind(default, "Secret")}
    for name, role in roles.items():
        secret = secrets[role["passwordSecret"]["name"]]
        assert secret["type"] == "kubernetes.io/basic-auth"
        assert secret["metadata"]["labels"]["cnpg.io/reload"] == "true"
        assert role["login"] is True
        assert role["ensure"] == "present"
        assert base64.b64decode(secret["data"]["username"]).decode() == name
    databases = {d["spec"]["name"]: d["spec"] for d in by_kind(default, "Database")}
    assert set(databases) == {"notebook_manager", "superset", "keycloak"}
    schemas = {s["name"]: s["owner"] for s in databases["notebook_manager"]["schemas"]}
    assert schemas == {"registry": "nbp_registry", "executor": "nbp_executor", "history": "nbp_history"}
    assert databases["superset"]["owner"] == "superset"
    assert databases["keycloak"]["owner"] == "keycloak"
    assert all(d["cluster"]["name"] == f"{RELEASE}-db" for d in databases.values())


def test_minimal_platform_creates_only_its_roles(rendered: dict[str, list[dict[str, Any]]]) -> None:
    cluster = one(rendered["minimal"], "Cluster", f"{RELEASE}-db")["spec"]
    # history_reader too: the history's migration grants it whether Superset is on or not
    assert {r["name"] for r in cluster["managed"]["roles"]} == {
        "nbp_registry",
        "nbp_executor",
        "nbp_history",
        "history_reader",
    }
    history = deployment(rendered["minimal"], "history")["spec"]["template"]["spec"]
    assert [c["name"] for c in history["initContainers"]] == ["migrate"]


def secret_files(docs: list[dict[str, Any]], name: str) -> dict[str, tuple[str, str]]:
    """The service's secret files: path -> (Secret, key), from its projected `secrets` volume, which both
    of its containers mount read-only at /opt/nbp/secrets."""
    spec = deployment(docs, name)["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == "secrets"]
    assert volume["projected"]["defaultMode"] == 0o400
    for container in containers(spec):
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "secrets"]
        assert (mount["mountPath"], mount["readOnly"]) == ("/opt/nbp/secrets", True), container["name"]
    return {
        f"/opt/nbp/secrets/{item['path']}": (source["secret"]["name"], item["key"])
        for source in volume["projected"]["sources"]
        for item in source["secret"]["items"]
    }


def test_services_read_the_database_from_cnpg_and_role_secrets(default: list[dict[str, Any]]) -> None:
    for name in SERVICES:
        env = env_map(main_container(default, name))
        for var, key in (("NBP_DB_HOST", "host"), ("NBP_DB_PORT", "port"), ("NBP_DB_NAME", "dbname")):
            assert env[var]["secretKeyRef"] == {"name": f"{RELEASE}-db-app", "key": key}
        assert env["NBP_DB_USER"]["secretKeyRef"] == {"name": f"{RELEASE}-db-{name}", "key": "username"}
        # the password is a file (nbp_common.settings reads NBP_DB_PASSWORD_FILE), in no environment
        assert "NBP_DB_PASSWORD" not in env
        files = secret_files(default, name)
        assert files[env["NBP_DB_PASSWORD_FILE"]] == (f"{RELEASE}-db-{name}", "password")


def test_the_executors_secrets_are_files_not_environment(default: list[dict[str, Any]]) -> None:
    env = env_map(main_container(default, "executor"))
    assert secret_files(default, "executor") == {
        env["NBP_DB_PASSWORD_FILE"]: (f"{RELEASE}-db-executor", "password"),
        env["NBP_SERVICE_CLIENT_SECRET_FILE"]: ("nbp-oidc-clients", "nbp-executor"),
    }
    spec = deployment(default, "executor")["spec"]["template"]["spec"]
    for container in containers(spec):
        assert not [
            e
            for e in container["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
            and e["valueFrom"]["secretKeyRef"]["key"] in {"password", "nbp-executor"}
        ], container["name"]
        assert not container.get("envFrom"), container["name"]


def test_database_accepts_only_its_clients(default: list[dict[str, Any]]) -> None:
    policy = one(default, "NetworkPolicy", f"{RELEASE}-db")["spec"]
    assert policy["podSelector"]["matchLabels"] == {"cnpg.io/cluster": f"{RELEASE}-db"}
    clients = policy["ingress"][0]
    assert clients["from"] == [{"podSelector": {"matchLabels": {"notebook-platform/access-db": "true"}}}]
    assert clients["ports"] == [{"protocol": "TCP", "port": 5432}]
    operator = policy["ingress"][2]
    assert operator["ports"] == [{"protocol": "TCP", "port": 8000}]
    clients_pods = [
        d["metadata"]["name"]
        for d in by_kind(default, "Deployment")
        if d["spec"]["template"]["metadata"]["labels"].get("notebook-platform/access-db") == "true"
    ]
    assert sorted(clients_pods) == sorted(f"{RELEASE}-{s}" for s in (*SERVICES, "superset"))


def test_the_history_reader_role_comes_from_the_database_not_an_init_container(
    default: list[dict[str, Any]],
) -> None:
    # The history's migration grants `history_reader`; CNPG creates it (the schema owner may not create
    # roles) and makes superset_ro a member. No pod grants anything.
    roles = {r["name"]: r for r in one(default, "Cluster", f"{RELEASE}-db")["spec"]["managed"]["roles"]}
    assert roles["history_reader"]["login"] is False
    assert "passwordSecret" not in roles["history_reader"]
    assert roles["superset_ro"]["inRoles"] == ["history_reader"]
    spec = deployment(default, "history")["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["migrate"]
    assert not [d for d in default if d["metadata"]["name"].endswith("history-grants")]


# --- the three services -------------------------------------------------------------------------------


def _shape(node: Any) -> Any:
    """The structure of a manifest with names, images and env values abstracted away."""
    if isinstance(node, dict):
        return {k: _shape(v) for k, v in node.items() if k not in {"env", "name", "image", "command"}}
    if isinstance(node, list):
        return [_shape(v) for v in node]
    return type(node).__name__


def test_services_come_from_one_template(default: list[dict[str, Any]]) -> None:
    for kind in ("Service", "ServiceAccount"):
        shapes = {json.dumps(_shape(one(default, kind, f"{RELEASE}-{s}")), sort_keys=True) for s in SERVICES}
        assert len(shapes) == 1, kind
    mains = {
        json.dumps(_shape(main_container(default, s) | {"volumeMounts": []}), sort_keys=True)
        for s in SERVICES
    }
    assert len(mains) == 1
    for name in SERVICES:
        container = main_container(default, name)
        assert container["command"] == [f"nbp-{name}", "serve", "--host", "0.0.0.0", "--port", "8000"]
        migrate = deployment(default, name)["spec"]["template"]["spec"]["initContainers"][0]
        assert migrate["command"] == [f"nbp-{name}", "migrate"]
        assert migrate["env"] == container["env"]
        assert container["image"] == f"notebook-platform/{name}:0.1.0"


def test_service_environment_contract(default: list[dict[str, Any]]) -> None:
    issuer = "http://nbp.localtest.me/auth/realms/notebook-platform"
    keycloak = f"http://{RELEASE}-keycloakx-http.notebook-platform.svc.cluster.local:80/auth/realms/notebook-platform"
    for name in SERVICES:
        env = env_map(main_container(default, name))
        assert env["NBP_AUTH"] == "keycloak"
        assert env["NBP_OIDC_ISSUER"] == issuer
        assert env["NBP_OIDC_JWKS_URL"] == f"{keycloak}/protocol/openid-connect/certs"
        assert env["NBP_OIDC_AUDIENCE"] == "nbp-api"
    svc = "notebook-platform.svc.cluster.local:8000"
    executor = env_map(main_container(default, "executor"))
    assert executor["NBP_REGISTRY_URL"] == f"http://{RELEASE}-registry.{svc}"
    assert executor["NBP_HISTORY_URL"] == f"http://{RELEASE}-history.{svc}"
    assert executor["NBP_WORKSPACE"] == "/workspace"
    assert executor["NBP_OIDC_TOKEN_URL"] == f"{keycloak}/protocol/openid-connect/token"
    assert executor["NBP_SERVICE_CLIENT_ID"] == "nbp-executor"
    assert executor["NBP_SERVICE_CLIENT_SECRET_FILE"] == "/opt/nbp/secrets/service-client-secret"
    assert "NBP_SERVICE_CLIENT_SECRET" not in executor
    assert executor["NBP_EXECUTOR_WORKERS"] == "2"
    # a pod per run (no trusted runner in the chart: it would run users' code with these credentials)
    assert executor["NBP_EXECUTOR_RUNNER"] == "kubernetes"
    assert "NBP_EXECUTOR_ALLOW_TRUSTED" not in executor
    assert {k: v for k, v in executor.items() if k.startswith("NBP_EXECUTOR_K8S_")} == {
        "NBP_EXECUTOR_K8S_NAMESPACE": "notebook-platform",
        "NBP_EXECUTOR_K8S_INSTANCE": RELEASE,
        "NBP_EXECUTOR_K8S_IMAGE": "notebook-platform/notebook:0.1.0",
        "NBP_EXECUTOR_K8S_IMAGE_PULL_POLICY": "Always",
        "NBP_EXECUTOR_K8S_WORKSPACE_CLAIM": "nbp-workspace",
        "NBP_EXECUTOR_K8S_CPU_REQUEST": "250m",
        "NBP_EXECUTOR_K8S_CPU_LIMIT": "2",
        "NBP_EXECUTOR_K8S_MEMORY_REQUEST": "512Mi",
        "NBP_EXECUTOR_K8S_MEMORY_LIMIT": "4Gi",
        "NBP_EXECUTOR_K8S_MAX_CPU": "4",
        "NBP_EXECUTOR_K8S_MAX_MEMORY": "16Gi",
        "NBP_EXECUTOR_K8S_TMP_SIZE": "1Gi",
        # the single-user servers' uid/gid: a run's files stay its owner's
        "NBP_EXECUTOR_K8S_RUN_AS_USER": "1000",
        "NBP_EXECUTOR_K8S_RUN_AS_GROUP": "100",
    }
    registry = env_map(main_container(default, "registry"))
    assert registry["NBP_OPENAPI_PEERS"] == (
        f"http://{RELEASE}-executor.{svc}/openapi.json,http://{RELEASE}-history.{svc}/openapi.json"
    )


def test_executor_shares_the_workspace_with_jupyterhub(
    default: list[dict[str, Any]], values: dict[str, Any]
) -> None:
    pvc = one(default, "PersistentVolumeClaim", "nbp-workspace")
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    spec = deployment(default, "executor")["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == "workspace"]
    assert volume["persistentVolumeClaim"] == {"claimName": "nbp-workspace"}
    (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "workspace"]
    assert mount["mountPath"] == "/workspace"
    assert not mount.get("readOnly")
    # outputs are written as the notebook user, into <workspace>/<username>, the user's home in JupyterHub
    assert (spec["securityContext"]["runAsUser"], spec["securityContext"]["fsGroup"]) == (1000, 100)
    single = values["jupyterhub"]["singleuser"]
    assert (single["uid"], single["fsGid"]) == (1000, 100)
    assert single["storage"]["type"] == "static"
    assert single["storage"]["static"] == {"pvcName": "nbp-workspace", "subPath": "{username}"}
    registry = deployment(default, "registry")["spec"]["template"]["spec"]
    (mount,) = [m for m in registry["containers"][0]["volumeMounts"] if m["name"] == "workspace"]
    assert mount["readOnly"] is True


def test_history_retention_purges_on_a_schedule_as_the_workspace_user(default: list[dict[str, Any]]) -> None:
    cronjob = one(default, "CronJob", f"{RELEASE}-history-retention")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["nbp-history", "purge-expired"]
    env = env_map(container)
    # The default keeps runs for ever: no platform-wide days unless values set them.
    assert "NBP_HISTORY_RETENTION_DAYS" not in env
    assert (env["NBP_HISTORY_RETENTION_BATCH"], env["NBP_WORKSPACE"]) == ("1000", "/workspace")
    assert "NBP_DB_PASSWORD" not in env
    assert env["NBP_DB_PASSWORD_FILE"] == "/opt/nbp/secrets/db-password"
    (volume,) = [v for v in pod["volumes"] if v["name"] == "secrets"]
    assert volume["projected"]["defaultMode"] == 0o400
    assert volume["projected"]["sources"] == [
        {"secret": {"name": f"{RELEASE}-db-history", "items": [{"key": "password", "path": "db-password"}]}}
    ]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "secrets"]
    assert (mount["mountPath"], mount["readOnly"]) == ("/opt/nbp/secrets", True)
    # the kubelet gives the file to the pod's fsGroup: the process's own group
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "workspace"]
    assert mount["mountPath"] == "/workspace"
    # It deletes users' output notebooks: as their user, like the executor that wrote them.
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (1000, 100)
    policy = one(default, "NetworkPolicy", f"{RELEASE}-history-retention")
    assert policy["spec"]["ingress"] == []
    assert {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]} == {53, 5432}


def test_network_policies_between_services(default: list[dict[str, Any]]) -> None:
    for name in SERVICES:
        policy = one(default, "NetworkPolicy", f"{RELEASE}-{name}")["spec"]
        assert policy["policyTypes"] == ["Ingress", "Egress"]
        (rule,) = policy["ingress"]
        peers = rule["from"]
        assert peers[0]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "ingress-nginx"
        }
        assert peers[1] == {"podSelector": {"matchLabels": {"notebook-platform/access-api": "true"}}}
        assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]
        egress_ports = {p["port"] for r in policy["egress"] for p in r.get("ports", [])}
        assert {53, 5432, 8080} <= egress_ports
        calls_peers = any(
            r.get("to", [{}])[0].get("podSelector", {}).get("matchLabels", {}).get("notebook-platform/api")
            == "true"
            for r in policy["egress"]
        )
        assert calls_peers == (name != "history")
    # the executor and registry call the other services: they carry the access label; history does not
    labels = {s: deployment(default, s)["spec"]["template"]["metadata"]["labels"] for s in SERVICES}
    assert {s for s, lab in labels.items() if lab.get("notebook-platform/access-api") == "true"} == {
        "registry",
        "executor",
    }


# --- the executor's run pods (the kubernetes runner) -------------------------------------------------

PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"]
# networkPolicy.platformAddressEgress with its defaults: the ingress controller's pods on http and https
PLATFORM_ADDRESS_EGRESS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}},
        }
    ],
    "ports": [{"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 443}],
}
RUN_POD_SELECTOR = {"app.kubernetes.io/component": "notebook-run", "app.kubernetes.io/instance": RELEASE}


def test_the_executor_may_manage_pods_in_its_namespace_only(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for variant, docs in rendered.items():
        role = one(docs, "Role", f"{RELEASE}-executor")
        assert role["metadata"]["namespace"] == "notebook-platform", variant
        assert role["rules"] == [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list", "watch", "delete"]}
        ], variant
        binding = one(docs, "RoleBinding", f"{RELEASE}-executor")
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": f"{RELEASE}-executor",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": f"{RELEASE}-executor", "namespace": "notebook-platform"}
        ]
        assert not by_kind(docs, "ClusterRole"), variant
        assert not by_kind(docs, "ClusterRoleBinding"), variant
        spec = deployment(docs, "executor")["spec"]["template"]["spec"]
        # its token, to call the API server; no other service of ours mounts one
        assert (spec["serviceAccountName"], spec["automountServiceAccountToken"]) == (
            f"{RELEASE}-executor",
            True,
        )
        for name in ("registry", "history"):
            assert deployment(docs, name)["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_run_pods_reach_dns_and_the_api_only(rendered: dict[str, list[dict[str, Any]]]) -> None:
    policy = one(rendered["default"], "NetworkPolicy", f"{RELEASE}-notebook-runs")["spec"]
    assert policy["podSelector"] == {"matchLabels": RUN_POD_SELECTOR}
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == []  # nothing connects to a run
    dns, api, platform_address, internet = policy["egress"]
    assert "to" not in dns
    assert {p["port"] for p in dns["ports"]} == {53}
    assert api == {
        "to": [
            {
                "podSelector": {
                    "matchLabels": {"notebook-platform/api": "true", "app.kubernetes.io/instance": RELEASE}
                }
            }
        ],
        "ports": [{"protocol": "TCP", "port": 8000}],
    }
    # the internet, as from JupyterHub: every private range is excepted, so no pod and no Service of the
    # cluster (the database, Keycloak, the hub) is reachable through it
    assert internet == {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE}}]}
    assert platform_address == PLATFORM_ADDRESS_EGRESS
    minimal = one(rendered["minimal"], "NetworkPolicy", f"{RELEASE}-notebook-runs")["spec"]
    # executor.runPods.allowInternetEgress: false
    assert minimal["egress"] == [dns, api, platform_address]
    # the API services let run pods in (the API is what a run may call) ...
    for name in SERVICES:
        (rule,) = one(rendered["default"], "NetworkPolicy", f"{RELEASE}-{name}")["spec"]["ingress"]
        assert {"podSelector": {"matchLabels": RUN_POD_SELECTOR}} in rule["from"], name
    # ... and no other policy does: neither the database's, Keycloak's nor anyone else's
    for other in by_kind(rendered["default"], "NetworkPolicy"):
        if other["metadata"]["name"] in {f"{RELEASE}-{name}" for name in SERVICES}:
            continue
        for rule in other["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                labels = peer.get("podSelector", {}).get("matchLabels", {})
                assert labels.get("app.kubernetes.io/component") != "notebook-run", other["metadata"]["name"]


def test_single_user_servers_reach_the_platform_address(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """NBP_URL (the ingress) from a JupyterHub server: a policy of ours beside z2jh's adds the way to the
    ingress controller, selecting exactly the pods z2jh's `singleuser` policy selects, egress only."""
    ours = one(rendered["default"], "NetworkPolicy", f"{RELEASE}-singleuser-platform-address")["spec"]
    z2jh = one(rendered["default"], "NetworkPolicy", "singleuser")["spec"]
    assert ours["podSelector"] == z2jh["podSelector"]
    assert ours["podSelector"] == {
        "matchLabels": {"app": "jupyterhub", "component": "singleuser-server", "release": RELEASE}
    }
    assert ours["policyTypes"] == ["Egress"]  # who may connect to a server stays z2jh's policy's rule
    assert "ingress" not in ours
    assert ours["egress"] == [PLATFORM_ADDRESS_EGRESS]
    # no JupyterHub, no policy for its servers
    names = {p["metadata"]["name"] for p in by_kind(rendered["minimal"], "NetworkPolicy")}
    assert f"{RELEASE}-singleuser-platform-address" not in names


def test_the_platform_address_rule_follows_the_values(helm_template: Any) -> None:
    docs = helm_template.template(
        "--set", "networkPolicy.platformAddressEgress.ports={8443}",
        "--set", "networkPolicy.platformAddressEgress.extraPeers[0].ipBlock.cidr=10.0.0.12/32",
    )  # fmt: skip
    rule = {
        "to": [*PLATFORM_ADDRESS_EGRESS["to"], {"ipBlock": {"cidr": "10.0.0.12/32"}}],
        "ports": [{"protocol": "TCP", "port": 8443}],
    }
    assert one(docs, "NetworkPolicy", f"{RELEASE}-singleuser-platform-address")["spec"]["egress"] == [rule]
    assert rule in one(docs, "NetworkPolicy", f"{RELEASE}-notebook-runs")["spec"]["egress"]
    closed = helm_template.template("--set", "networkPolicy.platformAddressEgress.enabled=false")
    names = {p["metadata"]["name"] for p in by_kind(closed, "NetworkPolicy")}
    assert f"{RELEASE}-singleuser-platform-address" not in names
    runs = one(closed, "NetworkPolicy", f"{RELEASE}-notebook-runs")["spec"]["egress"]
    assert not [r for r in runs for peer in r.get("to", []) if "namespaceSelector" in peer]


def test_the_executor_reaches_the_api_server_and_no_longer_the_internet(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    policy = one(rendered["default"], "NetworkPolicy", f"{RELEASE}-executor")["spec"]
    # users' code no longer runs in the executor: the internet rule moved to the run pods
    assert not [r for r in policy["egress"] for peer in r.get("to", []) if "ipBlock" in peer]
    assert policy["egress"][-1] == {
        "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]
    }


def _settings_fields(path: Path, cls: str) -> dict[str, ast.expr | None]:
    """The fields of a pydantic settings class, read from its source (the chart's checks run in their own
    environment, without the executor installed): name -> the annotation."""
    tree = ast.parse(path.read_text())
    (found,) = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls]
    return {
        n.target.id: n.annotation
        for n in found.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.target.id != "model_config"
    }


def test_the_executor_knows_every_setting_the_chart_passes(default: list[dict[str, Any]]) -> None:
    executor = REPO / "services" / "executor" / "nbp_executor"
    env = env_map(main_container(default, "executor"))
    runner = _settings_fields(executor / "runners" / "kubernetes" / "settings.py", "KubernetesSettings")
    passed = {
        name.removeprefix("NBP_EXECUTOR_K8S_").lower() for name in env if name.startswith("NBP_EXECUTOR_K8S_")
    }
    assert passed <= set(runner), passed - set(runner)
    assert set(runner) - passed == {"kubeconfig", "poll_seconds"}  # the tests' kubeconfig; a default
    runner_names = next(
        n.value
        for n in ast.walk(ast.parse((executor / "settings.py").read_text()))
        if isinstance(n, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "RunnerName" for t in n.targets)
    )
    assert env["NBP_EXECUTOR_RUNNER"] in {
        c.value for c in ast.walk(runner_names) if isinstance(c, ast.Constant)
    }


def test_run_pod_settings_follow_the_values(helm_template: Any) -> None:
    docs = helm_template.template(
        "--set", "executor.runPods.image=registry.example.com/notebooks:2025.1",
        "--set", "executor.runPods.imagePullPolicy=IfNotPresent",
        "--set", "executor.runPods.resources.limits.memory=3Gi",
        "--set", "executor.runPods.max.cpu=8",
        "--set", "workspace.existingClaim=team-files",
        "--set", "jupyterhub.singleuser.storage.static.pvcName=team-files",
        "--set", "jupyterhub.singleuser.image.name=registry.example.com/notebooks",
        "--set-string", "jupyterhub.singleuser.image.tag=2025.1",
    )  # fmt: skip
    env = env_map(main_container(docs, "executor"))
    assert env["NBP_EXECUTOR_K8S_IMAGE"] == "registry.example.com/notebooks:2025.1"
    assert env["NBP_EXECUTOR_K8S_IMAGE_PULL_POLICY"] == "IfNotPresent"
    assert env["NBP_EXECUTOR_K8S_MEMORY_LIMIT"] == "3Gi"
    assert env["NBP_EXECUTOR_K8S_MAX_CPU"] == "8"
    assert env["NBP_EXECUTOR_K8S_WORKSPACE_CLAIM"] == "team-files"


def hub_values(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The values z2jh's hub reads at start (its Secret `hub`, key values.yaml)."""
    data: dict[str, Any] = yaml.safe_load(base64.b64decode(one(docs, "Secret", "hub")["data"]["values.yaml"]))
    return data


def test_servers_and_runs_use_the_notebook_image(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """JupyterHub's servers and the run pods get one image, the Dockerfile's `notebook` target (the `nbp`
    client and Papermill on scipy-notebook): a notebook runs with the packages it was written with."""
    for variant, docs in rendered.items():
        run_image = env_map(main_container(docs, "executor"))["NBP_EXECUTOR_K8S_IMAGE"]
        assert run_image == "notebook-platform/notebook:0.1.0", variant
        if variant == "minimal":  # no JupyterHub
            continue
        image = hub_values(docs)["singleuser"]["image"]
        assert f"{image['name']}:{image['tag']}" == run_image, variant
    # what z2jh's hub does with that value: KubeSpawner's image is name:tag
    config = one(rendered["default"], "ConfigMap", "hub")["data"]["jupyterhub_config.py"]
    assert 'image = get_config("singleuser.image.name")' in config
    assert 'image = f"{image}:{tag}"' in config
    assert "c.KubeSpawner.image = image" in config


def test_the_notebook_image_is_a_target_the_makefile_builds() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM \$\{NOTEBOOK_BASE_IMAGE\} AS notebook$", dockerfile, re.MULTILINE)
    # the base at a date tag (docker-stacks never moves one), not a moving tag such as python-3.11
    base = re.search(r"^ARG NOTEBOOK_BASE_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert base is not None
    assert re.fullmatch(r"quay\.io/jupyter/scipy-notebook:\d{4}-\d{2}-\d{2}", base.group(1))
    # what the install pulls in is pinned to the lockfile (constraints exported from uv.lock)
    assert "uv export --frozen" in dockerfile
    assert "pip install --no-cache-dir --constraint /tmp/nbp-install/constraints.txt" in dockerfile
    images = re.search(r"^IMAGES\s*:=(.*)$", (REPO / "mk" / "chart.mk").read_text(), re.MULTILINE)
    assert images is not None
    assert "notebook" in images.group(1).split()


def test_notebooks_may_reach_the_api(values: dict[str, Any]) -> None:
    single = values["jupyterhub"]["singleuser"]
    assert single["extraLabels"]["notebook-platform/access-api"] == "true"
    egress = single["networkPolicy"]["egress"]
    api = [r for r in egress if r["to"][0]["podSelector"]["matchLabels"] == {"notebook-platform/api": "true"}]
    assert api
    assert api[0]["ports"] == [{"protocol": "TCP", "port": 8000}]
    assert single["networkPolicy"]["enabled"] is True


# --- identity -----------------------------------------------------------------------------------------


def _realm_files() -> list[Path]:
    return sorted((REPO / "keycloak-realm").glob("*.json"))


def test_keycloak_imports_the_realm(default: list[dict[str, Any]], values: dict[str, Any]) -> None:
    kc = values["keycloakx"]
    assert kc["command"][1:] == ["start", "--import-realm"]
    assert "mountPath: /opt/keycloak/data/import" in kc["extraVolumeMounts"]
    assert "name: {{ .Release.Name }}-keycloak-realm" in kc["extraVolumes"]
    realm_cm = one(default, "ConfigMap", f"{RELEASE}-keycloak-realm")["data"]
    assert sorted(realm_cm) == [p.name for p in _realm_files()]
    for name, text in realm_cm.items():
        realm = json.loads(text)
        assert realm["realm"] == values["oidc"]["realm"] == "notebook-platform", name


def test_realm_placeholders_are_all_provided(default: list[dict[str, Any]], values: dict[str, Any]) -> None:
    """Every ${VAR} the realm file uses is set in Keycloak's environment (ConfigMap or Secret refs)."""
    provided = set(one(default, "ConfigMap", f"{RELEASE}-keycloak-env")["data"])
    provided |= set(re.findall(r"- name: ([A-Z0-9_]+)", values["keycloakx"]["extraEnv"]))
    for path in _realm_files():
        # Upper-case names are environment variables; ${profileScopeConsentText} and the like are keys of
        # Keycloak's message bundles, resolved by its themes.
        used = set(re.findall(r"\$\{(?:env\.)?([A-Z][A-Z0-9_]*)(?::[^}]*)?\}", path.read_text()))
        assert used <= provided, (
            f"{path.name} uses {sorted(used - provided)}, not set in Keycloak's environment"
        )


def test_keycloak_runs_behind_the_ingress(default: list[dict[str, Any]], values: dict[str, Any]) -> None:
    env = one(default, "ConfigMap", f"{RELEASE}-keycloak-env")["data"]
    assert env["KC_PROXY_HEADERS"] == "xforwarded"
    assert env["KC_HOSTNAME"] == "http://nbp.localtest.me/auth"
    assert env["KC_HTTP_ENABLED"] == "true"
    assert env["KC_DB_URL_HOST"] == f"{RELEASE}-db-rw"
    assert env["KC_DB_URL_DATABASE"] == "keycloak"
    assert values["keycloakx"]["http"]["relativePath"] == "/auth"
    assert values["keycloakx"]["proxy"]["enabled"] is False  # ours, not set twice
    assert values["keycloakx"]["podLabels"]["notebook-platform/access-db"] == "true"


def test_jupyterhub_signs_in_with_keycloak(values: dict[str, Any]) -> None:
    hub = values["jupyterhub"]["hub"]
    config = hub["config"]
    assert config["JupyterHub"]["authenticator_class"] == "generic-oauth"
    assert config["Authenticator"]["enable_auth_state"] is True
    oauth = config["GenericOAuthenticator"]
    assert "openid" in oauth["scope"]
    assert oauth["client_id"] == "jupyterhub"
    assert oauth["manage_groups"] is True
    assert oauth["auth_state_groups_key"] == "oauth_user.groups"
    assert oauth["allowed_groups"], "an explicit allow rule"
    assert set(oauth["admin_groups"]) <= set(oauth["allowed_groups"])
    assert oauth["enable_pkce"] is True
    secret = hub["extraEnv"]["OAUTH_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": "nbp-oidc-clients", "key": "jupyterhub"}
    extra = hub["extraConfig"]["10-notebook-platform.py"]
    compile(extra, "hub-extra-config", "exec")
    assert "keycloak_login.configure(" in extra, "the sign-in module the local hub runs too"
    mounts = {m["name"]: m for m in hub["extraVolumeMounts"]}
    volumes = {v["name"]: v for v in hub["extraVolumes"]}
    assert mounts["nbp-login"]["mountPath"] == "/usr/local/etc/jupyterhub/nbp"
    assert volumes["nbp-login"]["configMap"]["name"] == "nbp-jupyterhub-login"


def test_the_hub_mounts_the_sign_in_module_and_its_values_repeat_its_settings(
    default: list[dict[str, Any]], values: dict[str, Any]
) -> None:
    module = one(default, "ConfigMap", "nbp-jupyterhub-login")["data"]["keycloak_login.py"]
    source = REPO / "services" / "hub" / "nbp_hub" / "keycloak_login.py"
    assert module.strip() == source.read_text().strip()
    spec = importlib.util.spec_from_file_location("keycloak_login", source)
    assert spec is not None
    assert spec.loader is not None
    login = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(login)
    oauth = values["jupyterhub"]["hub"]["config"]["GenericOAuthenticator"]
    assert oauth["client_id"] == login.CLIENT_ID
    assert set(oauth["allowed_groups"]) == set(login.ALLOWED_GROUPS)
    assert set(oauth["admin_groups"]) == set(login.ADMIN_GROUPS)
    assert oauth["scope"] == ["openid"]
    assert oauth["username_claim"] == "preferred_username"


def test_each_user_gets_their_folder_as_home_and_reaches_only_the_api(values: dict[str, Any]) -> None:
    single = values["jupyterhub"]["singleuser"]
    assert single["storage"]["homeMountPath"] == "/home/{username}"
    assert single["extraEnv"]["HOME"] == "/home/{username}"
    egress = single["networkPolicy"]["egress"]
    api_pods = {"podSelector": {"matchLabels": {"notebook-platform/api": "true"}}}
    assert [r["to"] for r in egress] == [[api_pods]]


def test_the_hub_may_spawn_servers_but_read_no_secret(
    default: list[dict[str, Any]], values: dict[str, Any]
) -> None:
    # z2jh's own Role would grant every Secret of the namespace: it is off, ours replaces it
    assert values["jupyterhub"]["rbac"]["create"] is False
    roles = {r["metadata"]["name"]: r for r in by_kind(default, "Role")}
    assert set(roles) == {f"{RELEASE}-executor", f"{RELEASE}-hub"}
    granted = {
        (r, v) for rule in roles[f"{RELEASE}-hub"]["rules"] for r in rule["resources"] for v in rule["verbs"]
    }
    assert ("pods", "create") in granted
    assert ("events", "watch") in granted
    assert not {r for r, _ in granted} & {"secrets", "configmaps", "serviceaccounts", "roles"}
    binding = one(default, "RoleBinding", f"{RELEASE}-hub")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "hub", "namespace": "notebook-platform"}
    ]
    assert one(default, "ServiceAccount", "hub")  # z2jh still makes the account the hub runs as
    assert one(default, "Deployment", "hub")["spec"]["template"]["spec"]["serviceAccountName"] == "hub"


def test_realm_groups_match_the_hub_allow_rule(values: dict[str, Any]) -> None:
    allowed = set(values["jupyterhub"]["hub"]["config"]["GenericOAuthenticator"]["allowed_groups"])
    for path in _realm_files():
        realm = json.loads(path.read_text())
        groups = {g["name"] for g in realm.get("groups", [])}
        assert allowed <= groups, (
            f"{path.name} defines groups {sorted(groups)}; JupyterHub allows {sorted(allowed)}"
        )
        clients = {c["clientId"] for c in realm.get("clients", [])}
        assert {"jupyterhub", "superset", "nbp-api", "nbp-cli", "nbp-executor"} <= clients, path.name


# --- Superset -----------------------------------------------------------------------------------------


def superset_parts(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    deploy = one(docs, "Deployment", f"{RELEASE}-superset")
    (job,) = [
        d for d in docs if d["kind"] == "Job" and d["metadata"]["name"].startswith(f"{RELEASE}-superset-init")
    ]
    return deploy, job


def test_superset_loads_the_files_under_superset_auth(default: list[dict[str, Any]]) -> None:
    cm = one(default, "ConfigMap", f"{RELEASE}-superset-auth")
    expected = sorted(p.name for p in (REPO / "superset-auth").glob("*.py"))
    assert sorted(cm.get("data") or {}) == expected
    for source in cm["data"].values():
        compile(source, "superset-auth", "exec")
    deploy, job = superset_parts(default)
    for pod in (deploy["spec"]["template"]["spec"], job["spec"]["template"]["spec"]):
        for container in pod["containers"] + pod.get("initContainers", []):
            mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
            assert mounts["superset-auth"] == "/opt/nbp/superset-auth"
            env = env_map(container)
            assert env["SUPERSET_CONFIG_PATH"] == "/opt/nbp/superset-auth/superset_config.py"
            # metadata and history in the platform's CNPG cluster, as Superset's own and the read-only role
            assert env["NBP_SUPERSET_DATABASE_URI"].startswith(
                f"postgresql+psycopg2://superset@{RELEASE}-db-rw."
            )
            assert env["NBP_SUPERSET_DATABASE_URI"].endswith(":5432/superset")
            assert env["NBP_HISTORY_DATABASE_URI"].startswith(
                f"postgresql+psycopg2://superset_ro@{RELEASE}-db-rw."
            )


def test_superset_runs_non_root_read_only_and_probed(default: list[dict[str, Any]]) -> None:
    deploy, job = superset_parts(default)
    pod = deploy["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    for container in (
        pod["containers"] + pod["initContainers"] + job["spec"]["template"]["spec"]["containers"]
    ):
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["runAsUser"] == 10001
        assert security["allowPrivilegeEscalation"] is False
    (web,) = pod["containers"]
    assert {web[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe")} == {"/health"}
    assert web["livenessProbe"]["tcpSocket"] == {"port": "http"}
    assert [c["name"] for c in pod["initContainers"]] == ["wait-for-init"]
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert script.split() == [
        "superset",
        "db",
        "upgrade",
        "superset",
        "init",
        "python",
        "/opt/nbp/superset-auth/import_dashboards.py",
    ]


def test_superset_reads_its_secrets_from_files(default: list[dict[str, Any]]) -> None:
    deploy, _ = superset_parts(default)
    volumes = {v["name"]: v for v in deploy["spec"]["template"]["spec"]["volumes"]}
    sources = volumes["secrets"]["projected"]["sources"]
    paths = {item["path"] for source in sources for item in source["secret"]["items"]}
    assert paths == {"db-password", "history-ro-password", "secret-key", "oidc-client-secret"}
    env = {e["name"]: e for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert not [e for e in env.values() if "valueFrom" in e], "secrets come as files, never as env values"
    files = {e["value"].rsplit("/", 1)[-1] for name, e in env.items() if name.endswith("_FILE")}
    assert files == paths


def test_superset_policy_lets_in_only_the_ingress(default: list[dict[str, Any]]) -> None:
    policy = one(default, "NetworkPolicy", f"{RELEASE}-superset")
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8088}]
    egress_ports = {p["port"] for r in policy["spec"]["egress"] for p in r.get("ports", [])}
    assert egress_ports == {53, 5432, 8080}
    init = one(default, "NetworkPolicy", f"{RELEASE}-superset-init")
    assert init["spec"]["ingress"] == []


def test_our_superset_image_matches_the_chart(default: list[dict[str, Any]]) -> None:
    chart = yaml.safe_load((CHART_SRC / "Chart.yaml").read_text())
    deploy, job = superset_parts(default)
    image = deploy["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"notebook-platform/superset:{chart['appVersion']}"
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == image


# --- helm test, NOTES, dependencies -------------------------------------------------------------------


def test_helm_test_hooks(default: list[dict[str, Any]]) -> None:
    tests = {
        d["metadata"]["name"]: d
        for d in by_kind(default, "Pod")
        if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
    }
    expected = {f"{RELEASE}-{s}-test-ready" for s in SERVICES} | {
        f"{RELEASE}-test-db",
        f"{RELEASE}-test-keycloak",
    }
    assert set(tests) == expected
    for name in SERVICES:
        script = tests[f"{RELEASE}-{name}-test-ready"]["spec"]["containers"][0]["command"][2]
        assert f"http://{RELEASE}-{name}.notebook-platform.svc:8000/ready" in script
    db = tests[f"{RELEASE}-test-db"]["spec"]["containers"][0]
    assert db["command"][0] == "psql"
    assert env_map(db)["PGHOST"]["secretKeyRef"]["key"] == "host"
    kc = tests[f"{RELEASE}-test-keycloak"]["spec"]["containers"][0]["command"][2]
    assert "/.well-known/openid-configuration" in kc
    assert 'expected = "http://nbp.localtest.me/auth/realms/notebook-platform"' in kc
    for pod in tests.values():
        for container in containers(pod["spec"]):
            compile_python = container["command"][:2] == ["python", "-c"]
            if compile_python:
                compile(container["command"][2], pod["metadata"]["name"], "exec")


def test_notes_print_the_urls(helm_template: Any, chart_copy: Path) -> None:
    probe = chart_copy / "templates" / "zz-notes-probe.yaml"
    probe.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-probe\n"
        'data:\n  notes: {{ include "notebook-platform/templates/NOTES.txt" . | quote }}\n'
    )
    docs = helm_template.template("--show-only", "templates/zz-notes-probe.yaml", chart=chart_copy)
    notes = docs[0]["data"]["notes"]
    for url in (
        "http://nbp.localtest.me/docs",
        "http://nbp.localtest.me/auth/admin/",
        "http://nbp.localtest.me/hub/",
        "http://superset.nbp.localtest.me/",
        "http://nbp.localtest.me/auth/realms/notebook-platform",
    ):
        assert url in notes, url


def test_third_party_charts_sit_behind_conditions() -> None:
    chart = yaml.safe_load((CHART_SRC / "Chart.yaml").read_text())
    remote = [d for d in chart["dependencies"] if "repository" in d]
    assert {d["name"] for d in remote} == {"keycloakx", "jupyterhub"}
    for dep in remote:
        assert dep["condition"] == f"{dep['name']}.enabled"
        assert re.fullmatch(r"\d+\.\d+\.\d+", dep["version"]), "pinned"
    (local,) = [d for d in chart["dependencies"] if "repository" not in d]
    assert local["name"] == "nbp-lib"
    assert yaml.safe_load((CHART_SRC / "charts" / "nbp-lib" / "Chart.yaml").read_text())["type"] == "library"


@pytest.mark.parametrize("variant", ["default", "kind", "production", "existing-secrets", "minimal"])
def test_every_object_is_labelled_and_namespaced(
    rendered: dict[str, list[dict[str, Any]]], variant: str
) -> None:
    for doc in rendered[variant]:
        meta = doc["metadata"]
        assert meta["labels"]["app.kubernetes.io/instance"] == RELEASE, meta["name"]
        if is_ours(doc):
            assert meta["namespace"] == "notebook-platform", meta["name"]
        else:
            # z2jh's templates name no namespace: Helm creates them in the release's
            assert meta.get("namespace", "notebook-platform") == "notebook-platform", meta["name"]
