"""The ``kubernetes`` runner: a pod per run, created, watched and deleted with the Kubernetes client.

A worker that claims a run creates its pod (``pod.run_pod``) and follows it: the pod's status (read every
``NBP_EXECUTOR_K8S_POLL_SECONDS``) says whether it runs or how it ended, and the output notebook that
Papermill saves into the owner's folder after every cell gives the progress, the failed cell and the
recorded results. Cancel deletes the pod. A pod is named after its run and attempt, so an executor that
takes over a run whose executor died finds the pod still running and follows it (``adopt``); the reaper
deletes pods that no live run owns, and a run whose pod vanished, was evicted or OOM-killed ends
``failed`` saying so."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import kubernetes.client as k8s
import kubernetes.config
from kubernetes.client.exceptions import ApiException
from nbp_common.events import ErrorDetails, ExecutionStatus

from nbp_executor.intake.notebooks import recorded_results
from nbp_executor.intake.workspace import user_folder
from nbp_executor.models import Job
from nbp_executor.runners import RunSignals
from nbp_executor.runners.kubernetes import output
from nbp_executor.runners.kubernetes.pod import (
    ATTEMPT_LABEL,
    CONTAINER,
    EXECUTION_LABEL,
    RunPod,
    check_resources,
    pod_name,
    run_pod,
    selector,
)
from nbp_executor.runners.kubernetes.settings import KubernetesSettings
from nbp_executor.runners.papermill_run import Outcome, Progress
from nbp_executor.schemas import RunResources
from nbp_executor.settings import ExecutorSettings, RunnerName

logger = logging.getLogger("nbp.executor.kubernetes")
T = TypeVar("T")
# A pod that outlives its deadline by this much (no kubelet acted on it) is deleted by the executor.
DEADLINE_SLACK_SECONDS = 30.0


@dataclass(frozen=True)
class RunPodState:
    """A run pod as the reaper sees it."""

    name: str
    run_id: int
    attempt: int
    ended: bool


@dataclass(frozen=True)
class PodEnding:
    phase: str  # Succeeded | Failed
    reason: str  # the pod's (DeadlineExceeded, Evicted) or its container's (OOMKilled, Error)
    message: str


def _ending(pod: Any) -> PodEnding | None:
    """How an ended pod ended, or None while it runs."""
    status = pod.status
    if status is None or status.phase not in ("Succeeded", "Failed"):
        return None
    reason = status.reason or ""
    message = status.message or ""
    for container in status.container_statuses or []:
        terminated = container.state.terminated if container.state is not None else None
        if container.name == CONTAINER and terminated is not None:
            if terminated.reason == "OOMKilled" or not reason:
                reason = terminated.reason or ""
            detail = (terminated.message or "").strip()
            message = message or (f"exit code {terminated.exit_code}" + (f": {detail}" if detail else ""))
    return PodEnding(status.phase, reason, message)


class KubernetesRunner:
    name: RunnerName = "kubernetes"
    limits = None  # a pod's limits are Kubernetes' (requests/limits, deadline), named in its errors

    def __init__(
        self, settings: ExecutorSettings, k8s_settings: KubernetesSettings, calls: Executor | None = None
    ) -> None:
        self.settings = settings
        self.k8s = k8s_settings
        self.namespace = k8s_settings.resolved_namespace()
        self._api: k8s.CoreV1Api | None = None
        # The client blocks: its calls run in these threads (default: the loop's default executor).
        self._calls = calls

    # --- the client ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self.k8s.kubeconfig is not None:
            config = k8s.Configuration()
            kubernetes.config.load_kube_config(str(self.k8s.kubeconfig), client_configuration=config)
        else:
            config = k8s.Configuration()
            kubernetes.config.load_incluster_config(client_configuration=config)
        self._api = k8s.CoreV1Api(k8s.ApiClient(config))

    @property
    def api(self) -> k8s.CoreV1Api:
        if self._api is None:
            self.start()
        assert self._api is not None
        return self._api

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._calls, partial(fn, *args, **kwargs))

    async def read(self, name: str) -> Any | None:
        try:
            return await self._call(self.api.read_namespaced_pod, name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def delete(self, name: str, grace_seconds: int = 0) -> None:
        with contextlib.suppress(ApiException):  # 404: already gone
            await self._call(
                self.api.delete_namespaced_pod, name, self.namespace, grace_period_seconds=grace_seconds
            )

    async def run_pods(self) -> list[RunPodState]:
        """This release's run pods."""
        found = await self._call(
            self.api.list_namespaced_pod, self.namespace, label_selector=selector(self.k8s)
        )
        pods = []
        for pod in found.items:
            labels = pod.metadata.labels or {}
            with contextlib.suppress(KeyError, ValueError):
                pods.append(
                    RunPodState(
                        pod.metadata.name,
                        int(labels[EXECUTION_LABEL]),
                        int(labels[ATTEMPT_LABEL]),
                        _ending(pod) is not None,
                    )
                )
        return pods

    # --- a run -------------------------------------------------------------------------------------------

    def check_resources(self, asked: RunResources | None) -> None:
        check_resources(asked, self.k8s)

    def pod_of(self, job: Job) -> dict[str, Any]:
        return run_pod(RunPod.of(job), self.k8s)

    async def execute(
        self, job: Job, progress: Progress, signals: RunSignals, create: bool = True
    ) -> Outcome | None:
        """Create the run's pod (``create``; else it exists: a run taken over from an executor that
        stopped) and follow it to its ending. None: the lease was lost (another executor owns it now)."""
        if "://" in job.output_path:
            return Outcome(
                ExecutionStatus.FAILED,
                "the kubernetes runner writes the output notebook into the owner's folder only; "
                "an output URL needs credentials a run's pod is never given",
            )
        folder = user_folder(self.settings.workspace, job.username)
        out_file = folder / job.output_path
        digest = await asyncio.to_thread(_sha256, folder / job.input_path)
        name = pod_name(self.k8s, job.id, job.attempt)
        if create:
            try:
                await self._call(self.api.create_namespaced_pod, self.namespace, self.pod_of(job))
            except ApiException as exc:
                return Outcome(
                    ExecutionStatus.FAILED, f"the run's pod could not be created: {_api_reason(exc)}"
                )
        outcome = await self._follow(job, name, out_file, progress, signals)
        if outcome is None:
            return None  # the pod is the new owner's to follow
        outcome.input_sha256 = digest
        await self.delete(name)  # an ended pod has nothing more to give
        return outcome

    async def _follow(
        self, job: Job, name: str, out_file: Path, progress: Progress, signals: RunSignals
    ) -> Outcome | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + job.timeout_seconds + DEADLINE_SLACK_SECONDS
        cancelled = False
        seen_mtime = 0.0
        while True:
            if signals.lost.is_set():
                return None
            if signals.cancel.is_set() and not cancelled:
                cancelled = True
                await self.delete(name, int(self.settings.executor_cancel_grace_seconds))
            mtime = await asyncio.to_thread(_mtime, out_file)
            if mtime != seen_mtime:
                seen_mtime = mtime
                nb = await asyncio.to_thread(output.read_output, out_file)
                if nb is not None:
                    output.progress_of(nb, progress)
            pod = await self.read(name)
            if pod is None or (cancelled and pod.metadata.deletion_timestamp is not None):
                if cancelled:
                    return await self._ended(
                        out_file, progress, ExecutionStatus.CANCELLED, "cancelled on request"
                    )
                return await self._ended(
                    out_file,
                    progress,
                    ExecutionStatus.FAILED,
                    "the run's pod was deleted before it ended (not by the executor: by an administrator, "
                    "a node drain or the cluster)",
                )
            ending = _ending(pod)
            if ending is not None:
                return await self._from_pod(job, ending, out_file, progress)
            if loop.time() > deadline:  # no kubelet enforced activeDeadlineSeconds
                await self.delete(name)
                return await self._ended(out_file, progress, ExecutionStatus.TIMED_OUT, _timed_out(job))
            with contextlib.suppress(TimeoutError):
                waiters = (
                    [signals.cancel.wait(), signals.lost.wait()] if not cancelled else [signals.lost.wait()]
                )
                await asyncio.wait_for(_first(*waiters), self.k8s.poll_seconds)

    async def _from_pod(self, job: Job, ending: PodEnding, out_file: Path, progress: Progress) -> Outcome:
        reason, message = ending.reason, ending.message
        if ending.phase == "Succeeded":
            return await self._ended(out_file, progress, ExecutionStatus.COMPLETED)
        if reason == "DeadlineExceeded":
            return await self._ended(out_file, progress, ExecutionStatus.TIMED_OUT, _timed_out(job))
        if reason == "Evicted":
            return await self._ended(
                out_file,
                progress,
                ExecutionStatus.FAILED,
                f"the run's pod was evicted by Kubernetes: {message or reason}",
            )
        if reason == "OOMKilled":
            limit = (job.resources or {}).get("memory") or self.k8s.memory_limit
            return await self._ended(
                out_file,
                progress,
                ExecutionStatus.FAILED,
                f"the run reached its memory limit of {limit}: the pod was OOM-killed by Kubernetes",
            )
        if "CellTimeoutError" in message or "Cell execution timed out" in message:
            return await self._ended(
                out_file,
                progress,
                ExecutionStatus.TIMED_OUT,
                f"timed out: a cell ran longer than its {job.cell_timeout_seconds} s limit",
            )
        return await self._ended(
            out_file, progress, ExecutionStatus.FAILED, f"the run's pod failed: {message or reason}"
        )

    async def _ended(
        self, out_file: Path, progress: Progress, status: ExecutionStatus, message: str | None = None
    ) -> Outcome:
        """The outcome, with what the output notebook tells: progress, the failed cell, the results."""
        nb = await asyncio.to_thread(output.read_output, out_file)
        outcome = Outcome(status, message)
        if nb is None:
            return outcome
        output.progress_of(nb, progress)
        outcome.results = recorded_results(nb)
        error = output.cell_error(nb)
        if error is not None and status in (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED):
            outcome.status = ExecutionStatus.FAILED
            outcome.error = error
            if (
                status == ExecutionStatus.COMPLETED
                or message is None
                or message.startswith("the run's pod failed")
            ):
                outcome.error_message = f"{error.ename}: {error.evalue}"
        elif status != ExecutionStatus.COMPLETED and progress.last_cell is not None:
            outcome.error = error or ErrorDetails(cell_index=progress.last_cell)
        return outcome

    async def close(self) -> None:
        if self._api is not None:
            await self._call(self._api.api_client.close)


def _timed_out(job: Job) -> str:
    return f"timed out: the run took longer than its {job.timeout_seconds} s limit"


async def _first(*waits: Any) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def _api_reason(exc: ApiException) -> str:
    return f"{exc.status} {exc.reason}: {(exc.body or '')[:500]}"


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
