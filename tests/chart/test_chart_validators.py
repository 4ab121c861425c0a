# mypy: disable-error-code="import-not-found"
# (pytest puts tests/chart on sys.path to share conftest's helpers; mypy names it tests.chart.conftest)
"""The validators `make chart-test` relies on do reject what they should: a check that cannot fail
would prove nothing (kubeconform with missing schemas, kube-score with every check ignored...)."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import CACHE, REPO, by_kind

SCHEMAS = CACHE / "schemas"


def _tool(name: str) -> Path:
    found = sorted(REPO.glob(f".cache/tools/{name}-*/{name}"))
    if not found:
        pytest.fail(f"{name} not found under .cache/tools: run `make chart-test`")
    tool: Path = found[-1]
    return tool


def _kubeconform(path: Path) -> subprocess.CompletedProcess[str]:
    if not (SCHEMAS / ".built").is_file():
        pytest.fail(f"no schemas in {SCHEMAS}: run `make chart-validate` (part of `make chart-test`)")
    cmd = [
        str(_tool("kubeconform")),
        "-strict",
        "-summary",
        "-kubernetes-version",
        "1.34.0",
        "-schema-location",
        f"{SCHEMAS}/k8s/{{{{ .NormalizedKubernetesVersion }}}}-standalone-strict/"
        "{{ .ResourceKind }}{{ .KindSuffix }}.json",
        "-schema-location",
        f"{SCHEMAS}/crds/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json",
        str(path),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)


def _mutations(default: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cluster = copy.deepcopy(by_kind(default, "Cluster")[0])
    cluster["spec"]["instancez"] = 1
    database = copy.deepcopy(by_kind(default, "Database")[0])
    database["spec"]["schemas"][0]["ownr"] = "nobody"
    deployment = copy.deepcopy(by_kind(default, "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsUser"] = "root"
    policy = copy.deepcopy(by_kind(default, "NetworkPolicy")[0])
    policy["spec"]["ingress"][0]["ports"][0]["protokol"] = "TCP"
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    return [cluster, database, deployment, policy, unknown]


def test_kubeconform_accepts_the_rendered_chart(tmp_path: Path) -> None:
    rendered = sorted((CACHE / "render").glob("*.yaml"))
    assert rendered
    for path in rendered:
        proc = _kubeconform(path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Invalid: 0, Errors: 0, Skipped: 0" in proc.stdout, proc.stdout


def test_kubeconform_rejects_broken_manifests(default: list[dict[str, Any]], tmp_path: Path) -> None:
    mutated = _mutations(default)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump_all(mutated))
    proc = _kubeconform(path)
    assert proc.returncode != 0
    assert f"Invalid: {len(mutated) - 1}, Errors: 1" in proc.stdout, proc.stdout  # Widget: no schema


def test_kube_score_flags_an_unsafe_deployment(default: list[dict[str, Any]], tmp_path: Path) -> None:
    deployment = copy.deepcopy(by_kind(default, "Deployment")[0])
    deployment["metadata"].pop("annotations", None)
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    container["securityContext"] = {"privileged": True}
    container.pop("resources")
    container["image"] = "example/app:latest"
    path = tmp_path / "unsafe.yaml"
    path.write_text(yaml.safe_dump(deployment))
    proc = subprocess.run(
        [str(_tool("kube-score")), "score", "--output-format", "ci", "--exit-one-on-warning", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode != 0
    for check in ("is privileged", "CPU limit is not set", "Image with latest tag"):
        assert check in proc.stdout, proc.stdout


def test_hadolint_flags_a_careless_dockerfile(tmp_path: Path) -> None:
    hadolint = REPO / ".cache" / "chart-venv" / "bin" / "hadolint"
    if not hadolint.is_file():
        pytest.fail("hadolint not found in .cache/chart-venv: run `make chart-test`")
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN pip install uv\nUSER root\n")
    proc = subprocess.run(
        [str(hadolint), "--config", str(REPO / ".hadolint.yaml"), str(careless)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3042", "DL3002"):
        assert rule in proc.stdout, proc.stdout
    clean = subprocess.run(
        [str(hadolint), "--config", str(REPO / ".hadolint.yaml"), str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert clean.returncode == 0, clean.stdout
