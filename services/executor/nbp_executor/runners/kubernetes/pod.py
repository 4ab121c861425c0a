"""The pod of one run: Papermill in the notebook image, with its owner's folder and nothing else.

- the shared workspace volume mounted with ``subPath: <username>`` at ``/home/<username>`` (the paths
  clients send mean the same as in JupyterHub), the working directory the notebook's folder;
- no service-account token, no Secret, no ``NBP_*`` (an environment from a short fixed list), no
  service links; non-root, seccomp ``RuntimeDefault``, every capability dropped, no privilege escalation,
  a read-only root filesystem with an ``emptyDir`` ``/tmp``;
- CPU and memory requests and limits; ``activeDeadlineSeconds`` = the run's timeout;
- labels naming the platform, the release, the component (the run pods' NetworkPolicy selects these),
  the run and its user.

Papermill saves the output notebook into the owner's folder after every cell: that is the run's progress
and its output, read by the executor from the same volume. Nothing flows back through credentials."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import PurePosixPath
from typing import Any

import yaml
from nbp_common.errors import Invalid

from nbp_executor.models import Job
from nbp_executor.queueing.jobs import job_field
from nbp_executor.runners.kubernetes.settings import KubernetesSettings, quantity
from nbp_executor.schemas import RunResources

PART_OF = "notebook-platform"
COMPONENT = "notebook-run"
EXECUTION_LABEL = "nbp.dev/execution-id"
ATTEMPT_LABEL = "nbp.dev/attempt"
USERNAME_LABEL = "nbp.dev/username"
USERNAME_ANNOTATION = "nbp.dev/username"  # the exact name (a label value cannot hold every username)
CONTAINER = "notebook"
# Papermill's command line, after making the output's folder (``outputs/`` of a user's first run):
# `python -c` with the arguments in argv, nothing interpolated into code.
PAPERMILL = (
    "import os, sys\n"
    "os.makedirs(os.path.dirname(sys.argv[2]), exist_ok=True)\n"
    "from papermill.cli import papermill\n"
    "papermill.main(args=sys.argv[1:], prog_name='papermill')"
)
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def selector(settings: KubernetesSettings) -> str:
    """The label selector of this release's run pods."""
    return (
        f"app.kubernetes.io/part-of={PART_OF},app.kubernetes.io/component={COMPONENT},"
        f"app.kubernetes.io/instance={settings.instance}"
    )


def pod_name(settings: KubernetesSettings, run_id: int, attempt: int) -> str:
    return f"{settings.instance}-run-{run_id}-{attempt}"


def username_label(username: str) -> str:
    """The username as a label value (at most 63 characters of ``[A-Za-z0-9_.-]``, alphanumeric ends)."""
    value = _LABEL_UNSAFE.sub("_", username)[:63]
    return value.strip("_.-") or "user"


def check_resources(asked: RunResources | None, settings: KubernetesSettings) -> None:
    """A run's own CPU/memory: Kubernetes quantities, each at most the admin's maximum (else 422)."""
    if asked is None:
        return
    for name, value, maximum in (
        ("cpu", asked.cpu, settings.max_cpu),
        ("memory", asked.memory, settings.max_memory),
    ):
        if value is None:
            continue
        field = f"resources.{name}"
        try:
            amount = quantity(value)
        except ValueError as exc:
            raise Invalid.field(field, "quantity", str(exc)) from None
        if amount <= 0:
            raise Invalid.field(field, "min", "must be more than 0")
        if amount > quantity(maximum):
            raise Invalid.field(field, "max", f"at most {maximum} (the administrator's maximum per run)")


@dataclass(frozen=True)
class RunPod:
    """What a run's pod is made from: fields of the run's record (``jobs.run_record``, the run as both
    services describe it) and of its job, each by its name there."""

    id: int
    attempt: int
    username: str
    input_path: str  # relative to the owner's folder
    output_path: str  # relative to the owner's folder
    parameters_used: dict[str, Any]
    kernel_name: str
    timeout_seconds: int
    cell_timeout_seconds: int | None
    resources: RunResources | None = None

    @classmethod
    def of(cls, job: Job) -> RunPod:
        """The pod's fields of ``job``, each by the run record's name (``jobs.job_field``); only these
        are read (the runner's job is detached from its session)."""
        found = {f.name: job_field(job, f.name) for f in fields(cls) if f.name != "resources"}
        resources = RunResources.model_validate(job.resources) if job.resources else None
        return cls(**found, resources=resources)

    @property
    def home(self) -> PurePosixPath:
        return PurePosixPath("/home") / self.username


def _resources(run: RunPod, settings: KubernetesSettings) -> dict[str, dict[str, str]]:
    requests = {"cpu": settings.cpu_request, "memory": settings.memory_request}
    limits = {"cpu": settings.cpu_limit, "memory": settings.memory_limit}
    asked = run.resources or RunResources()
    for name, value in (("cpu", asked.cpu), ("memory", asked.memory)):
        if value is not None:  # checked at submit: at most the maximum
            requests[name] = limits[name] = value
    return {"requests": requests, "limits": limits}


def papermill_args(run: RunPod) -> list[str]:
    """Papermill's command line: the parameters as YAML (the library Papermill reads them with)."""
    input_file = run.home / run.input_path
    args = [
        str(input_file),
        str(run.home / run.output_path),
        "--cwd",
        str(input_file.parent),
        "--kernel",
        run.kernel_name,
        "--request-save-on-cell-execute",
        "--autosave-cell-every",
        "10",
        "--no-progress-bar",
        "--log-level",
        "WARNING",
    ]
    if run.cell_timeout_seconds is not None:
        args += ["--execution-timeout", str(run.cell_timeout_seconds)]
    if run.parameters_used:
        args += ["--parameters_yaml", yaml.safe_dump(run.parameters_used, default_flow_style=True).strip()]
    return args


def run_pod(run: RunPod, settings: KubernetesSettings) -> dict[str, Any]:
    """The manifest of ``run``'s pod (a plain dict: what is created is what the tests read)."""
    if settings.image is None or settings.workspace_claim is None:
        raise ValueError("NBP_EXECUTOR_K8S_IMAGE and NBP_EXECUTOR_K8S_WORKSPACE_CLAIM must be set")
    home = str(run.home)
    env = {
        "HOME": home,
        "USER": run.username,
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "IPYTHONDIR": "/tmp/ipython",
        "JUPYTER_RUNTIME_DIR": "/tmp/jupyter-runtime",
        "PYTHONUNBUFFERED": "1",
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(settings, run.id, run.attempt),
            "labels": {
                "app.kubernetes.io/part-of": PART_OF,
                "app.kubernetes.io/instance": settings.instance,
                "app.kubernetes.io/component": COMPONENT,
                "app.kubernetes.io/managed-by": "nbp-executor",
                EXECUTION_LABEL: str(run.id),
                ATTEMPT_LABEL: str(run.attempt),
                USERNAME_LABEL: username_label(run.username),
            },
            "annotations": {USERNAME_ANNOTATION: run.username},
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "activeDeadlineSeconds": run.timeout_seconds,
            "terminationGracePeriodSeconds": 5,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": settings.run_as_user,
                "runAsGroup": settings.run_as_group,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": CONTAINER,
                    "image": settings.image,
                    "imagePullPolicy": settings.image_pull_policy,
                    "command": ["python", "-c", PAPERMILL],
                    "args": papermill_args(run),
                    "workingDir": str((run.home / run.input_path).parent),
                    "env": [{"name": name, "value": value} for name, value in env.items()],
                    "resources": _resources(run, settings),
                    # The end of the log becomes the termination message when the run fails.
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "securityContext": {
                        "runAsNonRoot": True,
                        "allowPrivilegeEscalation": False,
                        "privileged": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "volumeMounts": [
                        {"name": "workspace", "mountPath": home, "subPath": run.username},
                        {"name": "tmp", "mountPath": "/tmp"},
                    ],
                }
            ],
            "volumes": [
                {"name": "workspace", "persistentVolumeClaim": {"claimName": settings.workspace_claim}},
                {"name": "tmp", "emptyDir": {"sizeLimit": settings.tmp_size}},
            ],
        },
    }
