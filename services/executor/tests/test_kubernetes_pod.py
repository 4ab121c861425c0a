"""The ``kubernetes`` runner's pod of a run, field by field, and validated with kubeconform against the
Kubernetes schemas the chart tests use (``make chart-validate`` builds them)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from nbp_common.errors import Invalid
from nbp_executor.models import Job
from nbp_executor.runners.kubernetes.pod import (
    PAPERMILL,
    RunPod,
    check_resources,
    run_pod,
    selector,
    username_label,
)
from nbp_executor.runners.kubernetes.settings import KubernetesSettings, quantity
from nbp_executor.schemas import RunResources

REPO = Path(__file__).resolve().parents[3]
SCHEMAS = REPO / ".cache" / "chart" / "schemas"


def _settings(**overrides: Any) -> KubernetesSettings:
    values: dict[str, Any] = {
        "namespace": "nbp",
        "image": "registry.example/nbp/notebook:1.0",
        "workspace_claim": "nbp-workspace",
        "instance": "prod",
        **overrides,
    }
    return KubernetesSettings(**values)


def _run(**overrides: Any) -> RunPod:
    values: dict[str, Any] = {
        "id": 42,
        "attempt": 1,
        "username": "alice",
        "input_path": "reports/q3.ipynb",
        "output_path": "outputs/q3-42.ipynb",
        "parameters_used": {"alpha": 0.5, "big": 1e20, "name": "x: y", "when": "2026-01-01", "flags": [1, 2]},
        "kernel_name": "python3",
        "timeout_seconds": 900,
        "cell_timeout_seconds": 60,
    }
    values.update(overrides)
    return RunPod(**values)


def test_a_runs_pod_is_made_from_its_jobs_record() -> None:
    """The pod gets the run's record as the history does (``jobs.run_record``: the job's parameters as
    ``parameters_used``), the job's id and limits, and its own resources."""
    run = _run(attempt=2, resources=RunResources(cpu="1", memory="2Gi"))
    job = Job(
        id=run.id,
        status="running",
        attempt=run.attempt,
        username=run.username,
        input_path=run.input_path,
        output_path=run.output_path,
        parameters=run.parameters_used,
        kernel_name=run.kernel_name,
        timeout_seconds=run.timeout_seconds,
        cell_timeout_seconds=run.cell_timeout_seconds,
        resources={"cpu": "1", "memory": "2Gi"},
    )
    assert RunPod.of(job) == run
    assert RunPod.of(job) != _run(attempt=2)  # the job's resources count


def test_the_pod_sees_only_its_owners_folder_at_home() -> None:
    pod = run_pod(_run(), _settings())
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert container["volumeMounts"] == [
        {"name": "workspace", "mountPath": "/home/alice", "subPath": "alice"},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    assert spec["volumes"] == [
        {"name": "workspace", "persistentVolumeClaim": {"claimName": "nbp-workspace"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    assert container["workingDir"] == "/home/alice/reports"
    assert container["image"] == "registry.example/nbp/notebook:1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_no_token_no_secret_no_platform_environment() -> None:
    pod = run_pod(_run(), _settings())
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False  # no *_SERVICE_HOST of the platform's services either
    assert "envFrom" not in container
    names = [item["name"] for item in container["env"]]
    assert all(set(item) == {"name", "value"} for item in container["env"])  # no valueFrom: secretKeyRef
    assert not [n for n in names if n.startswith("NBP_")]
    assert sorted(names) == sorted(
        [
            "HOME",
            "USER",
            "LANG",
            "TMPDIR",
            "MPLCONFIGDIR",
            "IPYTHONDIR",
            "JUPYTER_RUNTIME_DIR",
            "PYTHONUNBUFFERED",
        ]
    )
    assert {"name": "HOME", "value": "/home/alice"} in container["env"]
    text = json.dumps(pod)
    assert "secret" not in text.lower()
    assert "serviceAccountName" not in spec


def test_security_context() -> None:
    pod = run_pod(_run(), _settings(run_as_user=1000, run_as_group=100))
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 100,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for field in ("hostNetwork", "hostPID", "hostIPC", "hostPath"):
        assert field not in json.dumps(spec)


def test_limits_and_deadline() -> None:
    settings = _settings(cpu_request="250m", cpu_limit="2", memory_request="512Mi", memory_limit="4Gi")
    pod = run_pod(_run(), settings)
    (container,) = pod["spec"]["containers"]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "2", "memory": "4Gi"},
    }
    assert pod["spec"]["activeDeadlineSeconds"] == 900
    assert pod["spec"]["restartPolicy"] == "Never"
    asked = run_pod(_run(resources=RunResources(memory="8Gi")), settings)
    assert asked["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "250m", "memory": "8Gi"},
        "limits": {"cpu": "2", "memory": "8Gi"},
    }


def test_labels_name_the_run_and_user() -> None:
    pod = run_pod(_run(), _settings())
    assert pod["metadata"]["name"] == "prod-run-42-1"
    assert pod["metadata"]["labels"] == {
        "app.kubernetes.io/part-of": "notebook-platform",
        "app.kubernetes.io/instance": "prod",
        "app.kubernetes.io/component": "notebook-run",
        "app.kubernetes.io/managed-by": "nbp-executor",
        "nbp.dev/execution-id": "42",
        "nbp.dev/attempt": "1",
        "nbp.dev/username": "alice",
    }
    assert selector(_settings()) == (
        "app.kubernetes.io/part-of=notebook-platform,app.kubernetes.io/component=notebook-run,"
        "app.kubernetes.io/instance=prod"
    )
    odd = run_pod(_run(username="bob@example.org"), _settings())
    assert odd["metadata"]["labels"]["nbp.dev/username"] == "bob_example.org"
    assert odd["metadata"]["annotations"]["nbp.dev/username"] == "bob@example.org"
    assert username_label("_x_" * 40) == ("x__" * 21)[:61]


def test_papermill_command_line() -> None:
    (container,) = run_pod(_run(), _settings())["spec"]["containers"]
    assert container["command"] == ["python", "-c", PAPERMILL]
    args = container["args"]
    assert args[:2] == ["/home/alice/reports/q3.ipynb", "/home/alice/outputs/q3-42.ipynb"]
    assert args[args.index("--cwd") + 1] == "/home/alice/reports"
    assert args[args.index("--kernel") + 1] == "python3"
    assert args[args.index("--execution-timeout") + 1] == "60"
    assert "--request-save-on-cell-execute" in args  # the progress: the output saved after each cell
    # The parameters come back exactly as given, read as Papermill reads them (YAML).
    parameters = yaml.safe_load(args[args.index("--parameters_yaml") + 1])
    assert parameters == {"alpha": 0.5, "big": 1e20, "name": "x: y", "when": "2026-01-01", "flags": [1, 2]}
    (plain,) = run_pod(_run(parameters_used={}, cell_timeout_seconds=None), _settings())["spec"]["containers"]
    assert "--parameters_yaml" not in plain["args"]
    assert "--execution-timeout" not in plain["args"]


def test_a_run_may_ask_up_to_the_maximum() -> None:
    settings = _settings(max_cpu="4", max_memory="16Gi")
    check_resources(RunResources(cpu="4", memory="16Gi"), settings)
    check_resources(RunResources(cpu="500m"), settings)
    check_resources(None, settings)
    for asked, field, rule in (
        (RunResources(cpu="5"), "resources.cpu", "max"),
        (RunResources(memory="17Gi"), "resources.memory", "max"),
        (RunResources(memory="lots"), "resources.memory", "quantity"),
        (RunResources(cpu="0"), "resources.cpu", "min"),
    ):
        with pytest.raises(Invalid) as refused:
            check_resources(asked, settings)
        assert refused.value.errors is not None
        (error,) = refused.value.errors
        assert (error.field, error.rule) == (field, rule)


def test_quantities() -> None:
    assert quantity("500m") == quantity("0.5")
    assert quantity("4Gi") == 4 * 1024**3
    assert quantity("1G") == 10**9
    for bad in ("", "1.2.3", "4gb", "-1", "1e3x"):
        with pytest.raises(ValueError, match="not a Kubernetes quantity"):
            quantity(bad)
    with pytest.raises(ValueError, match="Kubernetes quantity"):
        _settings(max_memory="16 GB")


def _kubeconform(path: Path, version: str) -> subprocess.CompletedProcess[str]:
    tools = sorted(REPO.glob(".cache/tools/kubeconform-*/kubeconform"))
    if not tools or not (SCHEMAS / ".built").is_file():
        pytest.fail("kubeconform or its schemas are missing: run `make chart-validate` (part of `make test`)")
    cmd = [
        str(tools[-1]),
        "-strict",
        "-summary",
        "-kubernetes-version",
        version,
        "-schema-location",
        f"{SCHEMAS}/k8s/{{{{ .NormalizedKubernetesVersion }}}}-standalone-strict/"
        "{{ .ResourceKind }}{{ .KindSuffix }}.json",
        str(path),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)


@pytest.mark.parametrize("version", ["1.30.0", "1.34.0"])
def test_kubeconform_accepts_the_pod(tmp_path: Path, version: str) -> None:
    pods = [
        run_pod(_run(), _settings()),
        run_pod(_run(resources=RunResources(cpu="3", memory="8Gi"), parameters_used={}), _settings()),
    ]
    path = tmp_path / "pods.yaml"
    path.write_text(yaml.safe_dump_all(pods))
    proc = _kubeconform(path, version)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Valid: 2" in proc.stdout


def test_kubeconform_rejects_a_broken_pod(tmp_path: Path) -> None:
    """The check can fail: a misspelt field and a wrong type are refused."""
    pod = run_pod(_run(), _settings())
    pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesytem"] = True
    other = run_pod(_run(), _settings())
    other["spec"]["activeDeadlineSeconds"] = "900"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump_all([pod, other]))
    proc = _kubeconform(path, "1.34.0")
    assert proc.returncode != 0
    assert "Invalid: 2" in proc.stdout, proc.stdout
