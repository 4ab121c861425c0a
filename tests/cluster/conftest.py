"""Fixtures for the tests against a real Kubernetes API server (`make cluster-test`).

The Makefile starts a fresh control plane (scripts/cluster/cluster.sh: etcd, kube-apiserver,
kube-controller-manager) and runs pytest inside its network namespace, which has only loopback; KUBECONFIG
names its administrator. There is no kubelet: Pods are created and stay Pending. Where Helm waits for a Pod
to finish (`helm test`), `StandInKubelet` sets the Pod's status the way a kubelet would, and says so.

The chart under test is the prepared copy `make chart-render` writes (the real jupyterhub and keycloakx
subcharts in its charts/); the CloudNativePG operator chart is the archive in THIRD_PARTY_CHARTS.
"""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / ".cache" / "chart" / "chart" / "notebook-platform"
HOW = "run `make cluster-test` (it builds the control plane and Helm, renders the chart, and runs these)"
CNPG_CHART_VERSION = "0.26.1"
CNPG_NAMESPACE = "cnpg-system"
RELEASE = "nbp"


def _need(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: {HOW}")
    return value


# --- the API server ----------------------------------------------------------------------------------


class Kube:
    """A small client of the API server, with the kubeconfig's administrator token."""

    def __init__(self, kubeconfig: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        token = config["users"][0]["user"]["token"]
        self.server = cluster["server"]
        self.context = ssl.create_default_context(cafile=cluster["certificate-authority"])
        self.http = httpx.Client(
            base_url=self.server,
            verify=self.context,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        self._resources: list[Resource] | None = None

    def request(self, method: str, path: str, body: Any = None, **headers: str) -> httpx.Response:
        return self.http.request(method, path, json=body, headers=headers)

    def get(self, path: str) -> dict[str, Any]:
        response = self.http.get(path)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        data: dict[str, Any] = response.json()
        return data

    def exists(self, path: str) -> bool:
        response = self.http.get(path)
        assert response.status_code in (200, 404), f"GET {path}: {response.status_code} {response.text}"
        return response.status_code == 200

    def items(self, path: str, selector: str = "") -> list[dict[str, Any]]:
        params = {"labelSelector": selector} if selector else {}
        response = self.http.get(path, params=params)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(path, json=body)

    def forget_resources(self) -> None:
        """Discover again on next use (after CRDs were installed)."""
        self._resources = None

    def resources(self) -> list[Resource]:
        """Every listable resource the server serves (discovery), subresources left out."""
        if self._resources is None:
            found = []
            groups = [("", "v1", "/api/v1")]
            for group in self.get("/apis")["groups"]:
                preferred = group["preferredVersion"]
                groups.append((group["name"], preferred["version"], f"/apis/{preferred['groupVersion']}"))
            for group_name, version, base in groups:
                for item in self.get(base)["resources"]:
                    if "/" in item["name"] or "list" not in item["verbs"]:
                        continue
                    found.append(
                        Resource(group_name, version, item["name"], item["kind"], item["namespaced"])
                    )
            self._resources = found
        return self._resources

    def path(self, api_version: str, kind: str, namespace: str | None, name: str = "") -> str:
        for resource in self.resources():
            if resource.kind == kind and resource.api_version == api_version:
                return resource.path(namespace, name)
        raise AssertionError(f"the API server serves no {api_version} {kind}")

    def namespaced_objects(self, namespace: str) -> list[dict[str, Any]]:
        """Every object in a namespace, of every resource type the server serves."""
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for resource in self.resources():
            if not resource.namespaced:
                continue
            for item in self.items(resource.path(namespace)):
                item.setdefault("kind", resource.kind)
                # one object may be served under two groups (events, v1 and events.k8s.io): count it once
                seen.setdefault((resource.kind, item["metadata"]["uid"]), item)
        return list(seen.values())

    def wait(self, what: str, check: Callable[[], bool], seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {seconds}s waiting for {what}")
            time.sleep(0.2)


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    name: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None, name: str = "") -> str:
        base = f"/apis/{self.api_version}" if self.group else "/api/v1"
        scope = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        return f"{base}{scope}/{self.name}" + (f"/{name}" if name else "")


@pytest.fixture(scope="session")
def kube() -> Kube:
    client = Kube(Path(_need("KUBECONFIG")))
    version = client.get("/version")
    assert version["gitVersion"].startswith("v1."), version
    return client


# --- Helm ----------------------------------------------------------------------------------------------


@dataclass
class Helm:
    binary: str
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Helm's caches and settings in a folder of the test run, not the user's
        self.env = {
            **os.environ,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args], capture_output=True, text=True, check=False, timeout=timeout, env=self.env
        )

    def ok(self, *args: str, timeout: float = 300) -> str:
        proc = self.run(*args, timeout=timeout)
        assert proc.returncode == 0, f"helm {' '.join(args)}\n{proc.stderr}"
        return proc.stdout

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [self.binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env
        )

    def manifest(self, release: str, namespace: str) -> list[dict[str, Any]]:
        text = self.ok("get", "manifest", release, "--namespace", namespace)
        return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(_need("HELM"), tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="session")
def chart() -> Path:
    if not (CHART / "Chart.yaml").is_file():
        pytest.fail(f"no prepared chart at {CHART}: {HOW}")
    return CHART


def variants(chart: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"default": []}
    for path in sorted((chart / "ci").glob("*-values.yaml")):
        found[path.name.removesuffix("-values.yaml")] = ["--values", str(path)]
    return found


@pytest.fixture(scope="session")
def cnpg_operator(helm: Helm, kube: Kube) -> str:
    """The CloudNativePG operator chart, installed first (its CRDs), WITHOUT its webhook configurations:
    the operator that would serve them never runs here (no kubelet), and the API server would call them
    for every Cluster and Database."""
    archive = Path(_need("THIRD_PARTY_CHARTS")) / f"cloudnative-pg-{CNPG_CHART_VERSION}.tgz"
    if not archive.is_file():
        pytest.fail(f"no {archive}: the CloudNativePG operator chart archive is needed")
    helm.ok(
        "install", "cnpg", str(archive), "--namespace", CNPG_NAMESPACE, "--create-namespace",
        "--set", "webhook.mutating.create=false", "--set", "webhook.validating.create=false",
    )  # fmt: skip
    for crd in ("clusters", "databases"):
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}.postgresql.cnpg.io"
        kube.wait(f"CRD {crd} established", lambda: _established(kube.get(path)))  # noqa: B023 - called here
    kube.forget_resources()
    return CNPG_NAMESPACE


def _established(crd: dict[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []  # null until the server has looked at it
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


# --- a stand-in kubelet --------------------------------------------------------------------------------


class StandInKubelet:
    """STAND-IN for a kubelet (none runs here): marks Pods as Succeeded, after `inspect` has looked at each,
    so that `helm test` (which waits for its Pods to finish) returns. Nothing in the Pods runs."""

    def __init__(self, kube: Kube, namespace: str, inspect: Callable[[dict[str, Any]], None]) -> None:
        self.kube, self.namespace, self.inspect = kube, namespace, inspect
        self.finished: list[str] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> StandInKubelet:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                for pod in self.kube.items(f"/api/v1/namespaces/{self.namespace}/pods"):
                    name = pod["metadata"]["name"]
                    if pod["status"].get("phase") != "Pending" or name in self.finished:
                        continue
                    if "helm.sh/hook" not in pod["metadata"].get("annotations", {}):
                        continue
                    self.inspect(pod)
                    self._succeed(pod)
                    self.finished.append(name)
            except BaseException as error:
                self.errors.append(error)
                return
            time.sleep(0.2)

    def _succeed(self, pod: dict[str, Any]) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        statuses = [
            {
                "name": c["name"],
                "image": c["image"],
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {
                    "terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}
                },
            }
            for c in pod["spec"]["containers"]
        ]
        status = {"status": {"phase": "Succeeded", "startTime": now, "containerStatuses": statuses}}
        path = f"/api/v1/namespaces/{self.namespace}/pods/{pod['metadata']['name']}/status"
        response = self.kube.http.patch(
            path, json=status, headers={"Content-Type": "application/merge-patch+json"}
        )
        assert response.status_code == 200, response.text


# --- objects -------------------------------------------------------------------------------------------


def ref(doc: dict[str, Any]) -> tuple[str, str]:
    return (doc["kind"], doc["metadata"]["name"])


def secret_data(kube: Kube, namespace: str) -> dict[str, dict[str, bytes]]:
    return {
        s["metadata"]["name"]: {k: base64.b64decode(v) for k, v in (s.get("data") or {}).items()}
        for s in kube.items(f"/api/v1/namespaces/{namespace}/secrets")
        if s.get("type") != "helm.sh/release.v1"
    }


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against a set of labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True
