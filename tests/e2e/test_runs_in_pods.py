"""On kind, each notebook run is a Pod of its own (the executor's `kubernetes` runner), confined by the
chart: its owner's folder only, no credentials, and a network that reaches DNS and the platform's API and
nothing else (kindnet enforces the NetworkPolicies). Also the executor's own secrets: files, not env.

The pods are looked at with kubectl (the current context: kind's, after `make kind-up`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from conftest import NAMESPACE, RELEASE, answer, in_executor, kubectl, put_file

TERMINAL = {"completed", "failed", "cancelled", "timed_out"}
RUN_SELECTOR = f"app.kubernetes.io/component=notebook-run,app.kubernetes.io/instance={RELEASE}"


def notebook(*cells: str) -> str:
    return json.dumps(
        {
            "cells": [
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "id": f"cell{index}",
                    "metadata": {},
                    "outputs": [],
                    "source": source,
                }
                for index, source in enumerate(cells)
            ],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def submit(http: httpx.Client, base_url: str, auth: dict[str, str], username: str, text: str) -> int:
    relative = f"e2e/pods-{uuid.uuid4().hex[:8]}.ipynb"
    put_file(username, relative, text)
    submitted = answer(
        http.post(f"{base_url}/executions", headers=auth, json={"notebook_path": relative}), 202
    )
    return int(submitted["id"])


def wait_for(what: str, check: Callable[[], Any], seconds: float = 600) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out after {seconds}s waiting for {what}"
        time.sleep(2)
    return found


def run_pods(execution_id: int) -> list[dict[str, Any]]:
    out = kubectl("get", "pods", "-l", f"{RUN_SELECTOR},nbp.dev/execution-id={execution_id}", "-o", "json")
    pods: list[dict[str, Any]] = json.loads(out)["items"]
    return pods


def ended(http: httpx.Client, base_url: str, auth: dict[str, str], execution_id: int) -> dict[str, Any]:
    def state() -> dict[str, Any] | None:
        run: dict[str, Any] = answer(http.get(f"{base_url}/executions/{execution_id}", headers=auth), 200)
        return run if run["status"] in TERMINAL else None

    found: dict[str, Any] = wait_for(f"run {execution_id} to end", state)
    return found


def test_a_run_is_a_locked_down_pod_and_cancel_deletes_it(
    http: httpx.Client, base_url: str, auth: dict[str, str], username: str
) -> None:
    execution_id = submit(http, base_url, auth, username, notebook("import time\n", "time.sleep(600)\n"))
    (pod,) = wait_for(f"the pod of run {execution_id}", lambda: run_pods(execution_id), seconds=300)
    labels = pod["metadata"]["labels"]
    assert labels["nbp.dev/username"] == username
    assert labels["app.kubernetes.io/part-of"] == "notebook-platform"
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] > 0
    (container,) = spec["containers"]
    assert not container.get("envFrom")
    for item in container.get("env", []):
        assert not item["name"].startswith("NBP_"), item["name"]
        assert "secretKeyRef" not in item.get("valueFrom", {}), item["name"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert not [v for v in volumes.values() if "secret" in v or "projected" in v]
    workspace = [m for m in container["volumeMounts"] if "persistentVolumeClaim" in volumes[m["name"]]]
    assert [(m["mountPath"], m["subPath"]) for m in workspace] == [(f"/home/{username}", username)]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["resources"]["limits"]["memory"]
    # the kubelet runs it: a real node, not a stand-in
    wait_for("the run pod to be Running", lambda: run_pods(execution_id)[0]["status"]["phase"] == "Running")

    answer(http.post(f"{base_url}/executions/{execution_id}/cancel", headers=auth), 202)
    assert ended(http, base_url, auth, execution_id)["status"] == "cancelled"
    wait_for("the cancelled run's pod to be deleted", lambda: not run_pods(execution_id), seconds=120)


# A run that tries every address it should not reach (TARGETS: name -> (host, port)) and records what
# it found into its owner's folder (RESULT), where the executor reads it back.
PROBE = """
import json, os, socket

def reach(host, port):
    try:
        with socket.create_connection((host, port), timeout=5):
            return "connected"
    except OSError as error:
        return f"no: {error}"

found = {name: reach(host, port) for name, (host, port) in TARGETS.items()}
found["nbp_env"] = sorted(k for k in os.environ if k.startswith("NBP_"))
found["token"] = os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token")
found["homes"] = sorted(os.listdir("/home"))
found["home_mounts"] = sorted(
    line.split()[4] for line in open("/proc/self/mountinfo") if line.split()[4].startswith("/home")
)
found["workspace_root"] = os.path.exists("/workspace")
with open(RESULT, "w") as out:
    json.dump(found, out)
"""


def test_a_run_reaches_dns_and_the_api_only(
    http: httpx.Client, base_url: str, auth: dict[str, str], username: str
) -> None:
    svc = f"{NAMESPACE}.svc.cluster.local"
    targets = {
        "registry": (f"{RELEASE}-registry.{svc}", 8000),
        "executor": (f"{RELEASE}-executor.{svc}", 8000),
        "history": (f"{RELEASE}-history.{svc}", 8000),
        "database": (f"{RELEASE}-db-rw.{svc}", 5432),
        "keycloak": (f"{RELEASE}-keycloakx-http.{svc}", 80),
        "hub": (f"hub.{svc}", 8081),
        "proxy-api": (f"proxy-api.{svc}", 8001),
        "superset": (f"{RELEASE}-superset.{svc}", 8088),
        "kubernetes-api": ("kubernetes.default.svc.cluster.local", 443),
    }
    result = f"e2e/probe-{uuid.uuid4().hex[:8]}.json"
    probe = PROBE.replace("TARGETS", repr(targets)).replace("RESULT", repr(f"/home/{username}/{result}"))
    execution_id = submit(http, base_url, auth, username, notebook(probe))
    run = ended(http, base_url, auth, execution_id)
    assert run["status"] == "completed", run
    found = json.loads(in_executor("cat", f"/workspace/{username}/{result}"))
    for name in ("registry", "executor", "history"):  # resolved by DNS and reached
        assert found[name] == "connected", (name, found[name])
    for name in ("database", "keycloak", "hub", "proxy-api", "superset", "kubernetes-api"):
        assert found[name].startswith("no:"), (name, found[name])
    assert found["nbp_env"] == []
    assert found["token"] is False
    # the only home mounted is the owner's; the notebook image's own user (docker-stacks' jovyan) keeps
    # its empty home from the image, on the read-only root filesystem
    assert found["home_mounts"] == [f"/home/{username}"]
    assert set(found["homes"]) <= {username, "jovyan"}, found["homes"]
    assert found["workspace_root"] is False


def test_the_executors_secrets_are_files_it_alone_reads() -> None:
    env = in_executor("python", "-c", "import os; print('\\n'.join(sorted(os.environ)))").split()
    assert "NBP_DB_PASSWORD" not in env
    assert "NBP_SERVICE_CLIENT_SECRET" not in env
    assert {"NBP_DB_PASSWORD_FILE", "NBP_SERVICE_CLIENT_SECRET_FILE"} <= set(env)
    for name in ("db-password", "service-client-secret"):
        # the kubelet writes 0400 and, for the pod's fsGroup, adds group read: no other user may read it
        mode = in_executor("stat", "-L", "-c", "%a", f"/opt/nbp/secrets/{name}").strip()
        assert mode in {"400", "440"}, (name, mode)


def test_the_executor_may_run_pods_and_read_no_secret() -> None:
    """Asked of the real cluster's authorizer (tests/cluster checks the Role in full)."""
    account = f"system:serviceaccount:{NAMESPACE}:{RELEASE}-executor"

    def can(*what: str) -> str:
        return kubectl("auth", "can-i", *what, "--as", account, check=False).strip()

    assert can("create", "pods") == "yes"
    assert can("delete", "pods") == "yes"
    assert can("get", "secrets") == "no"
    assert can("create", "pods", "--namespace", "kube-system") == "no"
