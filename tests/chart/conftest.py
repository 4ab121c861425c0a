"""Fixtures over the rendered chart (`make chart-render` writes .cache/chart/render/<variant>.yaml).

Checks that need Helm itself (schema refusals, NOTES) run the Helm binary
the Makefile built, on the prepared copy of the chart (with the real third-party subcharts in its charts/;
see tests/chart/tools/chart.py).
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_SRC = REPO / "charts" / "notebook-platform"
CACHE = REPO / ".cache" / "chart"
RENDERED = CACHE / "render"
PREPARED = CACHE / "chart" / "notebook-platform"
RELEASE = "nbp"
NAMESPACE = "notebook-platform"
HOW = "run `make chart-render` (or `make chart-test`), which builds Helm and renders the chart"


def _helm_binary() -> Path:
    found = sorted(REPO.glob(".cache/tools/helm-*/helm"))
    if not found:
        pytest.fail(f"Helm not found under .cache/tools: {HOW}")
    return found[-1]


@pytest.fixture(scope="session")
def helm() -> Path:
    return _helm_binary()


@pytest.fixture(scope="session")
def chart() -> Path:
    if not (PREPARED / "Chart.yaml").is_file():
        pytest.fail(f"no prepared chart at {PREPARED}: {HOW}")
    return PREPARED


def load_docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    files = sorted(RENDERED.glob("*.yaml"))
    if not files:
        pytest.fail(f"no rendered manifests in {RENDERED}: {HOW}")
    return {path.stem: load_docs(path.read_text()) for path in files}


@pytest.fixture(scope="session")
def default(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered["default"]


@pytest.fixture(scope="session")
def values() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CHART_SRC / "values.yaml").read_text())
    return data


class Helm:
    """`helm template` on the prepared chart with extra arguments."""

    def __init__(self, binary: Path, chart: Path) -> None:
        self.binary, self.chart = binary, chart

    def run(
        self, *args: str, release: str = RELEASE, chart: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = [
            str(self.binary),
            "template",
            release,
            str(chart or self.chart),
            "--namespace",
            NAMESPACE,
            *args,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)

    def template(self, *args: str, **kwargs: Any) -> list[dict[str, Any]]:
        proc = self.run(*args, **kwargs)
        assert proc.returncode == 0, proc.stderr
        return load_docs(proc.stdout)


@pytest.fixture(scope="session")
def helm_template(helm: Path, chart: Path) -> Helm:
    return Helm(helm, chart)


@pytest.fixture
def chart_copy(chart: Path, tmp_path: Path) -> Path:
    """A scratch copy of the prepared chart a test may add files to."""
    dest = tmp_path / chart.name
    shutil.copytree(chart, dest)
    return dest


# --- helpers over manifests ---------------------------------------------------------------------------


def is_ours(doc: dict[str, Any]) -> bool:
    """Rendered from this chart's templates (or its library subchart), not from a third-party subchart."""
    return doc["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "notebook-platform"


def subchart_of(doc: dict[str, Any]) -> str:
    """The third-party chart an object comes from: `jupyterhub`, `keycloakx` (its `helm.sh/chart` label,
    or z2jh's `chart` label, without the version)."""
    labels = doc["metadata"].get("labels", {})
    return str(labels.get("helm.sh/chart") or labels.get("chart", "")).rsplit("-", 1)[0]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(ref, pod metadata, pod spec) of every workload and bare Pod."""
    out = []
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
            template = doc["spec"]["template"]
            out.append((f"{kind}/{name}", template.get("metadata", {}), template["spec"]))
        elif kind == "CronJob":
            template = doc["spec"]["jobTemplate"]["spec"]["template"]
            out.append((f"{kind}/{name}", template.get("metadata", {}), template["spec"]))
        elif kind == "Pod":
            out.append((f"{kind}/{name}", doc["metadata"], doc["spec"]))
    return out


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def env_map(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret.get("data", {}).items()}
