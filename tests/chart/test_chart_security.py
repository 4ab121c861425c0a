# mypy: disable-error-code="import-not-found"
# (pytest puts tests/chart on sys.path to share conftest's helpers; mypy names it tests.chart.conftest)
"""Secure defaults, for every container the chart renders, its subcharts' included.

Pods differ from these only where EXCEPTIONS says, each for its reason."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import by_kind, containers, is_ours, pod_specs

RESOURCE_KEYS = ("cpu", "memory")

# (workload, what) -> why; `what` names the check below that the workload is excused from.
EXCEPTIONS = {
    ("Deployment/nbp-executor", "service account token"): (
        "the kubernetes runner creates, watches and deletes the run pods (Role nbp-executor: pods in its "
        "namespace, nothing else; tests/cluster checks it with SubjectAccessReviews)"
    ),
    ("StatefulSet/nbp-keycloakx", "writable root filesystem"): (
        "`kc.sh start` re-augments Keycloak's build under /opt/keycloak/lib (values.yaml keycloakx)"
    ),
    ("Deployment/hub", "service account token"): (
        "KubeSpawner creates, watches and deletes the single-user pods through the API (Role nbp-hub)"
    ),
    ("Deployment/hub", "writes /srv/jupyterhub"): "the hub's database (sqlite on z2jh's volume hub-db-dir)",
}


def _excused(ref: str, what: str) -> bool:
    return (ref.split(":", 1)[-1], what) in EXCEPTIONS


def _effective(pod: dict[str, Any], container: dict[str, Any], key: str) -> Any:
    own = container.get("securityContext", {})
    return own[key] if key in own else pod.get("securityContext", {}).get(key)


def _all_pods(rendered: dict[str, list[dict[str, Any]]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [
        (f"{variant}:{ref}", meta, spec)
        for variant, docs in rendered.items()
        for ref, meta, spec in pod_specs(docs)
    ]


def test_every_variant_renders_pods(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert set(rendered) >= {"default", "kind", "production", "existing-secrets", "minimal"}
    for variant, docs in rendered.items():
        assert pod_specs(docs), f"{variant} renders no pods"


def test_containers_are_locked_down(rendered: dict[str, list[dict[str, Any]]]) -> None:
    problems = []
    for ref, _meta, spec in _all_pods(rendered):
        for container in containers(spec):
            where = f"{ref} container {container['name']}"
            sc = container.get("securityContext", {})
            if _effective(spec, container, "runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if _effective(spec, container, "runAsUser") in (0, None):
                problems.append(f"{where}: no non-zero runAsUser")
            seccomp = _effective(spec, container, "seccompProfile") or {}
            if seccomp.get("type") != "RuntimeDefault":
                problems.append(f"{where}: seccomp profile is not RuntimeDefault")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                problems.append(f"{where}: privileged")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities do not drop ALL")
            if sc.get("capabilities", {}).get("add"):
                problems.append(f"{where}: adds capabilities")
            # every program writes only to /tmp (emptyDir) and its volumes
            if sc.get("readOnlyRootFilesystem") is not True and not _excused(ref, "writable root filesystem"):
                problems.append(f"{where}: root filesystem is writable")
    assert not problems, "\n".join(problems)


def test_pods_share_nothing_with_the_node(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for variant, docs in rendered.items():
        no_token = {
            sa["metadata"]["name"]
            for sa in by_kind(docs, "ServiceAccount")
            if sa.get("automountServiceAccountToken") is False
        }
        for name, _meta, spec in pod_specs(docs):
            ref = f"{variant}:{name}"
            for key in ("hostNetwork", "hostPID", "hostIPC"):
                assert not spec.get(key), f"{ref}: {key}"
            for volume in spec.get("volumes", []):
                assert "hostPath" not in volume, f"{ref}: hostPath volume {volume['name']}"
            # the pod's own setting wins; without one, its ServiceAccount's
            by_account = spec.get("serviceAccountName") not in no_token
            automount = spec.get("automountServiceAccountToken", by_account)
            assert automount is False or _excused(ref, "service account token"), (
                f"{ref}: mounts a service account token"
            )


def test_requests_and_limits_everywhere(rendered: dict[str, list[dict[str, Any]]]) -> None:
    problems = []
    for ref, _meta, spec in _all_pods(rendered):
        for container in containers(spec):
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                missing = [key for key in RESOURCE_KEYS if key not in resources.get(kind, {})]
                if missing:
                    problems.append(f"{ref} {container['name']}: no {kind} for {missing}")
    assert not problems, "\n".join(problems)


def test_images_are_pinned(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for ref, _meta, spec in _all_pods(rendered):
        for container in containers(spec):
            image = container["image"]
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            assert tag not in ("", "latest"), f"{ref} {container['name']}: image {image} is not pinned"


def test_services_are_probed(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for variant, docs in rendered.items():
        apis = [
            d
            for d in filter(is_ours, by_kind(docs, "Deployment"))
            if d["metadata"]["labels"].get("app.kubernetes.io/component") == "api"
        ]
        assert len(apis) == 3, variant  # Superset's probes: test_chart_platform
        for deployment in apis:
            for container in deployment["spec"]["template"]["spec"]["containers"]:
                ready = container["readinessProbe"]["httpGet"]
                live = container["livenessProbe"]["httpGet"]
                assert (ready["path"], ready["port"]) == ("/ready", "http"), f"{variant} {container['name']}"
                assert (live["path"], live["port"]) == ("/health", "http"), f"{variant} {container['name']}"
                ports = {p["name"]: p["containerPort"] for p in container["ports"]}
                assert ports == {"http": 8000}


def test_tmp_is_the_only_writable_path_besides_the_workspace(
    default: list[dict[str, Any]], values: dict[str, Any]
) -> None:
    workspace = values["workspace"]["mountPath"]
    for ref, _meta, spec in pod_specs(default):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        mounts = [m for c in containers(spec) for m in c.get("volumeMounts", [])]
        if mounts:
            assert "emptyDir" in volumes["tmp"], ref
        for mount in mounts:
            # configMap and secret volumes are always mounted read-only
            if mount.get("readOnly") or {"configMap", "secret"} & set(volumes[mount["name"]]):
                continue
            path = mount["mountPath"]
            assert path in {"/tmp", workspace} or _excused(ref, f"writes {path}"), f"{ref} writes {path}"


def test_every_pod_is_covered_by_a_network_policy(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for variant, docs in rendered.items():
        policies = by_kind(docs, "NetworkPolicy")
        for ref, meta, _spec in pod_specs(docs):
            labels = meta.get("labels", {})
            selecting = [
                p
                for p in policies
                if all(labels.get(k) == v for k, v in p["spec"]["podSelector"].get("matchLabels", {}).items())
            ]
            assert selecting, f"{variant}: {ref} is not selected by any NetworkPolicy"


# --- subcharts: the security settings the chart hands them ---------------------------------------------


def _subchart_containers(
    values: dict[str, Any],
) -> list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """(name, pod security context, container security context, resources) set in values.yaml."""
    kc, hub = values["keycloakx"], values["jupyterhub"]
    return [
        ("keycloak", kc["podSecurityContext"], kc["securityContext"], kc["resources"]),
        (
            "jupyterhub hub",
            hub["hub"]["podSecurityContext"],
            hub["hub"]["containerSecurityContext"],
            hub["hub"]["resources"],
        ),
        (
            "jupyterhub proxy",
            {},
            hub["proxy"]["chp"]["containerSecurityContext"],
            hub["proxy"]["chp"]["resources"],
        ),
    ]


@pytest.mark.parametrize("index", range(3))
def test_subchart_containers_are_locked_down(values: dict[str, Any], index: int) -> None:
    name, pod, container, resources = _subchart_containers(values)[index]
    merged = {**pod, **container}
    assert merged.get("runAsNonRoot") is True, name
    assert container.get("allowPrivilegeEscalation") is False, name
    assert "ALL" in container.get("capabilities", {}).get("drop", []), name
    assert (merged.get("seccompProfile") or {}).get("type") == "RuntimeDefault", name
    for kind in ("requests", "limits"):
        assert all(key in resources.get(kind, {}) for key in RESOURCE_KEYS), f"{name}: {kind}"
    if name == "keycloak":
        # documented exception (values.yaml): `kc.sh start` re-augments its build under /opt/keycloak
        assert container["readOnlyRootFilesystem"] is False
        assert container["runAsUser"] != 0
    else:
        assert container.get("readOnlyRootFilesystem") is True, name


def test_notebooks_run_unprivileged(values: dict[str, Any]) -> None:
    single = values["jupyterhub"]["singleuser"]
    assert single["uid"] != 0
    assert single["allowPrivilegeEscalation"] is False
    kubespawner = values["jupyterhub"]["hub"]["config"]["KubeSpawner"]["container_security_context"]
    assert kubespawner["runAsNonRoot"] is True
    assert "ALL" in kubespawner["capabilities"]["drop"]
    for limit in ("cpu", "memory"):
        assert single[limit]["guarantee"], limit
        assert single[limit]["limit"], limit
