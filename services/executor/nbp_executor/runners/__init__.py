"""Where a run's kernel runs, chosen by ``NBP_EXECUTOR_RUNNER``:

- ``sandbox`` (the default): each kernel in its owner's sandbox (``nbp_common.sandbox``), forked warm
  from a zygote kept inside that sandbox (``sandbox.SandboxRunner``);
- ``trusted``: kernels forked inside the executor with its own rights, for a single-user machine only
  (``trusted.TrustedRunner``; refused under Keycloak unless explicitly allowed);
- ``kubernetes`` (the chart's): each run a pod of its own that runs Papermill itself
  (``kubernetes.runner.KubernetesRunner``).

Two seams, then: a ``Runner`` hands the worker a warm kernel and the worker runs the cells in it; a
``PodRunner`` runs the whole notebook elsewhere and the worker only follows it (lease, cancel, progress).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from nbp_common.auth import AuthSettings
from nbp_common.sandbox import Limits

from nbp_executor.runners.kernels import WarmKernel
from nbp_executor.settings import ExecutorSettings, RunnerName

if TYPE_CHECKING:
    from nbp_executor.models import Job
    from nbp_executor.runners.kubernetes.runner import RunPodState
    from nbp_executor.runners.papermill_run import Outcome, Progress
    from nbp_executor.schemas import RunResources

logger = logging.getLogger("nbp.executor.runners")


class Runner(Protocol):
    name: RunnerName
    limits: Limits | None  # what a run may use (None: nothing but the run's timeout)

    def start(self) -> None: ...

    def warm(self, kernel_name: str, username: str | None = None) -> None: ...

    async def take(self, kernel_name: str, username: str) -> WarmKernel: ...

    def discard(self, kernel: WarmKernel) -> None: ...

    async def close(self) -> None: ...


@dataclass
class RunSignals:
    """What a worker's lease keeper tells the run it keeps: cancel asked, lease lost."""

    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    lost: asyncio.Event = field(default_factory=asyncio.Event)


@runtime_checkable
class PodRunner(Protocol):
    """Runs a whole notebook somewhere else (a pod runs Papermill); the worker follows it."""

    name: RunnerName

    def start(self) -> None: ...

    def check_resources(self, asked: RunResources | None) -> None: ...

    async def execute(
        self, job: Job, progress: Progress, signals: RunSignals, create: bool = True
    ) -> Outcome | None: ...

    async def run_pods(self) -> list[RunPodState]: ...

    async def delete(self, name: str, grace_seconds: int = 0) -> None: ...

    async def close(self) -> None: ...


class RunnerRefused(RuntimeError):
    """The configured runner may not run here (the message says why and what to set)."""


def build_runner(settings: ExecutorSettings, auth: AuthSettings) -> Runner | PodRunner:
    from nbp_executor.runners.sandbox import SandboxRunner
    from nbp_executor.runners.trusted import TrustedRunner

    if settings.executor_runner == "kubernetes":
        return _kubernetes_runner(settings)

    if settings.executor_runner == "trusted":
        if auth.auth == "keycloak" and not settings.executor_allow_trusted:
            raise RunnerRefused(
                "NBP_EXECUTOR_RUNNER=trusted runs every user's notebook with the executor's own rights; "
                "it is refused with NBP_AUTH=keycloak (several users) unless "
                "NBP_EXECUTOR_ALLOW_TRUSTED=true. Use NBP_EXECUTOR_RUNNER=sandbox."
            )
        logger.warning(
            "!!! NBP_EXECUTOR_RUNNER=trusted: notebooks run INSIDE the executor with its rights, its files "
            "and every user's folder in reach. For a single-user machine only. !!!"
        )
        return TrustedRunner(settings)
    return SandboxRunner(settings)


def _kubernetes_runner(settings: ExecutorSettings) -> PodRunner:
    from nbp_executor.runners.kubernetes.runner import KubernetesRunner  # the client takes seconds to import
    from nbp_executor.runners.kubernetes.settings import KubernetesSettings

    k8s = KubernetesSettings()
    missing = [
        f"NBP_EXECUTOR_K8S_{name.upper()}"
        for name in ("image", "workspace_claim")
        if getattr(k8s, name) is None
    ]
    if missing:
        raise RunnerRefused(f"NBP_EXECUTOR_RUNNER=kubernetes needs {' and '.join(missing)}")
    try:
        return KubernetesRunner(settings, k8s)
    except ValueError as exc:
        raise RunnerRefused(str(exc)) from exc
