"""The ``kubernetes`` runner's lifecycle against a real Kubernetes control plane (etcd, kube-apiserver,
kube-controller-manager: the root conftest's ``kube_control_plane``, in its loopback-only network
namespace): create, follow to each ending, cancel, deadline, pod deleted underneath, evicted and
OOM-killed, executor restarted mid-run, and the reaper both ways.

There is no kubelet here. ``StandInKubelet`` below is a STAND-IN for one, written for these tests: it
takes each Pending run pod, runs the pod's own command (Papermill) in the ``sandbox`` runner's sandbox
with the owner's folder at ``/home/<username>`` (what the pod's ``subPath`` mount gives), enforces
``activeDeadlineSeconds``, kills the process when the pod is deleted, and writes the pod's status as a
kubelet would (phase, container state, exit code, the log's tail as termination message). Eviction and
an OOM kill are faults it cannot cause for real: for those it only writes the status a kubelet writes
(``mark_evicted``, ``mark_oom_killed``), named as such."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes.client as k8s
import kubernetes.config
import nbformat
import pytest
from kubernetes.client.exceptions import ApiException
from nbp_common.db import Database
from nbp_common.events import TERMINAL
from nbp_common.sandbox import Limits, Sandbox, prepare, spawn
from nbp_executor.models import Job
from nbp_executor.queueing import jobs, wakeups
from nbp_executor.queueing.wakeups import Notifications
from nbp_executor.queueing.worker import Context, Reaper, Worker
from nbp_executor.runners.kubernetes.pod import RunPod, run_pod, selector
from nbp_executor.runners.kubernetes.runner import KubernetesRunner
from nbp_executor.runners.kubernetes.settings import KubernetesSettings
from nbp_executor.settings import ExecutorSettings
from sqlalchemy import text, update
from sqlalchemy.engine import URL

from conftest import ControlPlane
from tests.support.common import asyncpg_dsn, settings_for
from tests.support.executor import write_notebook

CLONE_NEWNET = 0x40000000
EVICTION_MESSAGE = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi."


def _enter(netns: str) -> None:
    """A thread initializer: this thread's sockets are the control plane's namespace's (loopback only)."""
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {netns}")
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def kube_calls(kube_control_plane: ControlPlane) -> Iterator[ThreadPoolExecutor]:
    """Threads inside the control plane's network namespace, for every Kubernetes call of the tests."""
    with ThreadPoolExecutor(8, "kube", initializer=_enter, initargs=(kube_control_plane.netns,)) as pool:
        yield pool


@pytest.fixture(scope="module")
def core(kube_control_plane: ControlPlane) -> k8s.CoreV1Api:
    config = k8s.Configuration()
    kubernetes.config.load_kube_config(str(kube_control_plane.kubeconfig), client_configuration=config)
    return k8s.CoreV1Api(k8s.ApiClient(config))


async def _in(pool: ThreadPoolExecutor, fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(pool, lambda: fn(*args, **kwargs))


@pytest.fixture(scope="module")
async def namespace(core: k8s.CoreV1Api, kube_calls: ThreadPoolExecutor) -> str:
    """A namespace of this module's, once its `default` ServiceAccount exists (pods need it)."""
    name = f"nbp-runs-{uuid.uuid4().hex[:8]}"
    await _in(kube_calls, core.create_namespace, {"metadata": {"name": name}})
    for _ in range(300):
        with contextlib.suppress(ApiException):
            await _in(kube_calls, core.read_namespaced_service_account, "default", name)
            return name
        await asyncio.sleep(0.1)
    pytest.fail(f"the controller-manager made no default ServiceAccount in {name}")


@dataclass
class _Running:
    process: asyncio.subprocess.Process | None = None
    ended: bool = False


@dataclass
class StandInKubelet:
    """A STAND-IN for a kubelet (see the module's docstring): runs each run pod's command in the
    sandbox with the owner's folder, and reports the pod's status."""

    core: k8s.CoreV1Api
    calls: ThreadPoolExecutor
    namespace: str
    workspace: Path
    hold: set[str] = field(default_factory=set)  # pods it leaves Pending (a fault's status is written)
    started: dict[str, _Running] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def run(self) -> None:
        while True:
            found = await _in(self.calls, self.core.list_namespaced_pod, self.namespace)
            for pod in found.items:
                name = pod.metadata.name
                if name in self.started or name in self.hold or pod.status.phase != "Pending":
                    continue
                self.started[name] = _Running()
                task = asyncio.create_task(self._run_pod(pod))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            await asyncio.sleep(0.2)

    async def _status(self, name: str, status: dict[str, Any]) -> None:
        with contextlib.suppress(ApiException):  # deleted meanwhile
            await _in(
                self.calls, self.core.patch_namespaced_pod_status, name, self.namespace, {"status": status}
            )

    async def _run_pod(self, pod: Any) -> None:
        name = pod.metadata.name
        username = pod.metadata.annotations["nbp.dev/username"]
        (container,) = pod.spec.containers
        (home,) = [m for m in container.volume_mounts if m.name == "workspace"]
        assert home.sub_path == username
        assert home.mount_path == f"/home/{username}"
        sandbox = Sandbox(
            username,
            self.workspace / home.sub_path,
            cwd=container.working_dir,
            env={e.name: e.value for e in container.env},
            limits=Limits(memory_bytes=None, cpu_seconds=None, processes=None),
            packages=("nbp",),
        )
        prepared = prepare(sandbox, [*container.command, *container.args])
        running = self.started[name]
        running.process = await spawn(
            prepared, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        await self._status(
            name,
            {
                "phase": "Running",
                "containerStatuses": [_container(container, {"running": {"startedAt": _now()}})],
            },
        )
        output = asyncio.create_task(running.process.stdout.read())  # type: ignore[union-attr]
        deadline = asyncio.get_running_loop().time() + pod.spec.active_deadline_seconds
        reason = None
        while running.process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(running.process.wait(), 0.3)
            if running.process.returncode is not None:
                break
            gone = await self._gone(name)
            if gone or asyncio.get_running_loop().time() > deadline:
                running.process.kill()
                await running.process.wait()
                if gone:
                    running.ended = True
                    prepared.close()
                    return
                reason = "DeadlineExceeded"
        log = (await output).decode(errors="replace")
        prepared.close()
        running.ended = True
        code = running.process.returncode
        if reason == "DeadlineExceeded":
            status: dict[str, Any] = {
                "phase": "Failed",
                "reason": "DeadlineExceeded",
                "message": "Pod was active on the node longer than the specified deadline",
            }
            terminated: dict[str, Any] = {"exitCode": 137, "reason": "Error"}
        else:
            status = {"phase": "Succeeded" if code == 0 else "Failed"}
            terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}
            if code != 0:  # terminationMessagePolicy FallbackToLogsOnError: the log's tail
                terminated["message"] = "\n".join(log.splitlines()[-80:])[-2048:]
        terminated.update(startedAt=_now(), finishedAt=_now())
        status["containerStatuses"] = [_container(container, {"terminated": terminated})]
        await self._status(name, status)

    async def _gone(self, name: str) -> bool:
        try:
            pod = await _in(self.calls, self.core.read_namespaced_pod, name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return pod.metadata.deletion_timestamp is not None

    async def mark_evicted(self, name: str) -> None:
        """A mock of a fault the stand-in cannot cause: the node evicts the pod (memory pressure)."""
        await self._status(
            name,
            {
                "phase": "Failed",
                "reason": "Evicted",
                "message": EVICTION_MESSAGE,
            },
        )

    async def mark_oom_killed(self, name: str, pod: Any) -> None:
        """A mock of a fault the stand-in cannot cause: the kernel's OOM killer ends the container."""
        (container,) = pod.spec.containers
        terminated = {"exitCode": 137, "reason": "OOMKilled", "startedAt": _now(), "finishedAt": _now()}
        await self._status(
            name,
            {"phase": "Failed", "containerStatuses": [_container(container, {"terminated": terminated})]},
        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for running in self.started.values():
            if running.process is not None and running.process.returncode is None:
                running.process.kill()
                await running.process.wait()


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _container(container: Any, state: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": container.name,
        "image": container.image,
        "imageID": "",
        "ready": "running" in state,
        "restartCount": 0,
        "state": state,
    }


@dataclass
class Executor:
    """One executor process's workers, reaper and runner, started and stopped by the test."""

    ctx: Context
    tasks: list[asyncio.Task[None]]
    runner: KubernetesRunner

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@dataclass
class Cluster:
    core: k8s.CoreV1Api
    calls: ThreadPoolExecutor
    namespace: str
    kubelet: StandInKubelet
    database: Database
    notifications: Notifications
    workspace: Path
    settings: ExecutorSettings
    k8s_settings: KubernetesSettings
    executors: list[Executor] = field(default_factory=list)

    async def start_executor(self, identity: str, workers: int = 2) -> Executor:
        runner = KubernetesRunner(self.settings, self.k8s_settings, self.kube_calls_pool())
        runner.start()
        ctx = Context(self.settings, self.database.sessionmaker, self.notifications, runner)
        tasks = [asyncio.create_task(Worker(ctx, f"{identity}:{n}").run()) for n in range(workers)]
        tasks.append(asyncio.create_task(Reaper(ctx, identity).run()))
        executor = Executor(ctx, tasks, runner)
        self.executors.append(executor)
        return executor

    def kube_calls_pool(self) -> ThreadPoolExecutor:
        return self.calls

    async def submit(self, path: str, username: str = "alice", **values: Any) -> int:
        async with self.database.sessionmaker() as session, session.begin():
            run_id = await jobs.next_id(session)
            row: dict[str, Any] = {
                "id": run_id,
                "status": "queued",
                "attempt": 1,
                "max_attempts": 1,
                "username": username,
                "input_path": path,
                "output_path": f"outputs/run-{run_id}.ipynb",
                "parameters": {},
                "kernel_name": "python3",
                "timeout_seconds": 120,
                "cell_timeout_seconds": None,
                "tags": [],
                "cancel_requested": False,
                "cells_done": 0,
                "results": [],
                "queued_at": jobs.utcnow(),
                **values,
            }
            await jobs.insert(session, row)
        return run_id

    async def job(self, run_id: int) -> Job:
        async with self.database.sessionmaker() as session:
            job = await session.get(Job, run_id)
            assert job is not None
            return job

    async def ended(self, run_id: int, within: float = 240.0) -> Job:
        for _ in range(int(within * 5)):
            job = await self.job(run_id)
            if job.status in TERMINAL:
                return job
            await asyncio.sleep(0.2)
        raise AssertionError(f"run {run_id} did not end within {within} s: {job.status}")

    async def pod(self, run_id: int, attempt: int = 1) -> Any | None:
        try:
            return await _in(
                self.calls, self.core.read_namespaced_pod, f"test-run-{run_id}-{attempt}", self.namespace
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def running_pod(self, run_id: int, within: float = 120.0) -> Any:
        """The run's pod once the stand-in kubelet has started its command."""
        for _ in range(int(within * 10)):
            pod = await self.pod(run_id)
            if pod is not None and pod.status.phase == "Running":
                return pod
            await asyncio.sleep(0.1)
        raise AssertionError(f"the pod of run {run_id} never ran")

    async def progress(self, run_id: int, cells_done: int, within: float = 240.0) -> Job:
        for _ in range(int(within * 10)):
            job = await self.job(run_id)
            if job.cells_done >= cells_done:
                return job
            await asyncio.sleep(0.1)
        raise AssertionError(f"run {run_id} never reported {cells_done} cells done")

    async def cancel(self, run_id: int) -> None:
        async with self.database.sessionmaker() as session, session.begin():
            await session.execute(update(Job).where(Job.id == run_id).values(cancel_requested=True))
            await session.execute(text("SELECT pg_notify(:c, :p)"), {"c": wakeups.CANCEL, "p": str(run_id)})

    async def pods(self) -> list[str]:
        found = await _in(
            self.calls,
            self.core.list_namespaced_pod,
            self.namespace,
            label_selector=selector(self.k8s_settings),
        )
        return sorted(pod.metadata.name for pod in found.items)


@pytest.fixture
async def cluster(
    database_url: URL,
    core: k8s.CoreV1Api,
    kube_calls: ThreadPoolExecutor,
    kube_control_plane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Cluster]:
    workspace = tmp_path / "workspace"
    (workspace / "alice").mkdir(parents=True)
    settings = ExecutorSettings(
        workspace=workspace,
        executor_runner="kubernetes",
        executor_lease_seconds=3,
        executor_poll_seconds=1,
        executor_cancel_grace_seconds=1,
    )
    k8s_settings = KubernetesSettings(
        namespace=namespace,
        kubeconfig=kube_control_plane.kubeconfig,
        image="nbp-notebook:test",
        workspace_claim="nbp-workspace",
        instance="test",
        poll_seconds=0.3,
    )
    database = Database(settings_for(database_url))
    notifications = Notifications(asyncpg_dsn(database_url))
    await notifications.start()
    kubelet = StandInKubelet(core, kube_calls, namespace, workspace)
    kubelet_task = asyncio.create_task(kubelet.run())
    cluster = Cluster(
        core, kube_calls, namespace, kubelet, database, notifications, workspace, settings, k8s_settings
    )
    try:
        yield cluster
    finally:
        for executor in cluster.executors:
            await executor.stop()
        kubelet_task.cancel()
        with contextlib.suppress(BaseException):
            await kubelet_task
        await kubelet.close()
        for name in await cluster.pods():
            with contextlib.suppress(ApiException):
                await _in(kube_calls, core.delete_namespaced_pod, name, namespace, grace_period_seconds=0)
        await notifications.close()
        await database.dispose()


def _notebook(cluster: Cluster, name: str, *cells: str, parameters: str | None = None) -> str:
    write_notebook(cluster.workspace / "alice" / name, *cells, parameters=parameters)
    return name


async def test_a_run_is_a_pod_that_runs_papermill_to_completed(cluster: Cluster) -> None:
    path = _notebook(
        cluster,
        "reports/q3.ipynb",
        "import os, pathlib, nbp\nopen('mine.txt', 'w').write(str(alpha * 2))",
        "nbp.record('accuracy', 0.93)\nprint(os.getcwd(), sorted(os.listdir('/home')))",
        parameters="alpha = 1",
    )
    await cluster.start_executor("exec-a")
    run_id = await cluster.submit(path, parameters={"alpha": 21}, cells_total=3, resources={"memory": "1Gi"})
    pod = await cluster.running_pod(run_id)
    # The pod as the API server stored it: the owner's folder only, no token, limits, deadline, labels.
    spec = pod.spec
    assert spec.automount_service_account_token is False
    assert spec.active_deadline_seconds == 120
    (container,) = spec.containers
    assert [(m.mount_path, m.sub_path) for m in container.volume_mounts] == [
        ("/home/alice", "alice"),
        ("/tmp", None),
    ]
    assert container.resources.limits == {"cpu": "2", "memory": "1Gi"}
    assert container.security_context.read_only_root_filesystem is True
    assert pod.metadata.labels["nbp.dev/execution-id"] == str(run_id)
    job = await cluster.ended(run_id)
    assert job.status == "completed", job.error_message
    assert (job.cells_done, job.cells_total) == (3, 3)
    assert [(r["name"], r["value_numeric"]) for r in job.results] == [("accuracy", 0.93)]
    assert job.input_sha256 is not None
    assert (cluster.workspace / "alice" / "reports" / "mine.txt").read_text() == "42"
    out = nbformat.read(cluster.workspace / "alice" / job.output_path, as_version=4)
    printed = "".join(o["text"] for o in out.cells[-1].outputs if o["output_type"] == "stream")
    assert "/home/alice/reports ['alice']" in printed  # its folder, and no other user's in /home
    assert await cluster.pod(run_id) is None  # an ended run's pod is deleted


async def test_a_failing_cell_is_named(cluster: Cluster) -> None:
    path = _notebook(cluster, "broken.ipynb", "x = 1", "raise ValueError('no such column: price')", "y = 2")
    await cluster.start_executor("exec-a")
    run_id = await cluster.submit(path, cells_total=3)
    job = await cluster.ended(run_id)
    assert job.status == "failed"
    assert job.error_message == "ValueError: no such column: price"
    assert job.error is not None
    assert (job.error["cell_index"], job.error["ename"]) == (1, "ValueError")
    assert "raise ValueError" in job.error["cell_source"]


async def test_cancel_deletes_the_pod(cluster: Cluster) -> None:
    path = _notebook(cluster, "slow.ipynb", "import time", "time.sleep(120)")
    await cluster.start_executor("exec-a")
    run_id = await cluster.submit(path)
    await cluster.running_pod(run_id)
    await cluster.progress(run_id, 1)
    await cluster.cancel(run_id)
    job = await cluster.ended(run_id, within=20)
    assert job.status == "cancelled"
    assert job.error_message == "cancelled on request"
    assert await cluster.pod(run_id) is None
    running = cluster.kubelet.started[f"test-run-{run_id}-1"]
    for _ in range(50):  # the stand-in kubelet saw the deletion and ended the process
        if running.ended:
            break
        await asyncio.sleep(0.1)
    assert running.ended


async def test_the_deadline_ends_the_run_as_timed_out(cluster: Cluster) -> None:
    path = _notebook(cluster, "forever.ipynb", "import time", "time.sleep(300)")
    await cluster.start_executor("exec-a")
    run_id = await cluster.submit(path, timeout_seconds=4)
    pod = await cluster.running_pod(run_id)
    assert pod.spec.active_deadline_seconds == 4
    job = await cluster.ended(run_id)
    assert job.status == "timed_out"
    assert job.error_message == "timed out: the run took longer than its 4 s limit"


async def test_a_pod_deleted_underneath_fails_the_run_saying_so(cluster: Cluster) -> None:
    path = _notebook(cluster, "slow2.ipynb", "import time", "time.sleep(120)")
    await cluster.start_executor("exec-a")
    run_id = await cluster.submit(path)
    await cluster.running_pod(run_id)
    await _in(cluster.calls, cluster.core.delete_namespaced_pod, f"test-run-{run_id}-1", cluster.namespace)
    job = await cluster.ended(run_id, within=20)
    assert job.status == "failed"
    assert job.error_message is not None
    assert job.error_message.startswith("the run's pod was deleted before it ended")


async def test_evicted_and_oom_killed_pods_are_named_in_the_error(cluster: Cluster) -> None:
    path = _notebook(cluster, "big.ipynb", "import time", "time.sleep(120)")
    await cluster.start_executor("exec-a")
    evicted, oom = await cluster.submit(path), await cluster.submit(path, resources={"memory": "2Gi"})
    cluster.kubelet.hold.update({f"test-run-{evicted}-1", f"test-run-{oom}-1"})
    for run_id in (evicted, oom):
        for _ in range(100):
            if await cluster.pod(run_id) is not None:
                break
            await asyncio.sleep(0.1)
    await cluster.kubelet.mark_evicted(f"test-run-{evicted}-1")
    await cluster.kubelet.mark_oom_killed(f"test-run-{oom}-1", await cluster.pod(oom))
    job = await cluster.ended(evicted, within=20)
    assert (job.status, job.error_message) == (
        "failed",
        f"the run's pod was evicted by Kubernetes: {EVICTION_MESSAGE}",
    )
    job = await cluster.ended(oom, within=20)
    assert (job.status, job.error_message) == (
        "failed",
        "the run reached its memory limit of 2Gi: the pod was OOM-killed by Kubernetes",
    )


async def test_a_restarted_executor_follows_the_pod_to_its_end(cluster: Cluster) -> None:
    path = _notebook(cluster, "long.ipynb", "import time", "time.sleep(6)", "print('done')")
    first = await cluster.start_executor("exec-old")
    run_id = await cluster.submit(path, cells_total=3)
    pod = await cluster.running_pod(run_id)
    await first.stop()  # a rolling update: the process stops, the run's pod goes on
    job = await cluster.job(run_id)
    assert job.status == "running"
    await cluster.start_executor("exec-new")
    job = await cluster.ended(run_id)
    assert job.status == "completed", job.error_message
    assert job.lease_owner is None
    assert job.worker == "exec-new:taken-over"
    assert job.attempt == 1  # the same attempt: the notebook ran once, in the same pod
    assert len([name for name in cluster.kubelet.started if name.startswith(f"test-run-{run_id}-")]) == 1
    assert pod.metadata.uid  # (the pod the new executor followed was the one the old one made)


async def test_the_reaper_deletes_pods_no_run_owns_and_fails_runs_whose_pod_is_gone(cluster: Cluster) -> None:
    path = _notebook(cluster, "orphan.ipynb", "import time", "time.sleep(120)")
    # A pod of a run that has ended (its executor died before deleting it), and of no run at all.
    ended_run = await cluster.submit(path)
    async with cluster.database.sessionmaker() as session, session.begin():
        await session.execute(update(Job).where(Job.id == ended_run).values(status="completed"))
    stale = [
        run_pod(
            RunPod(run_id, 1, "alice", path, "outputs/x.ipynb", {}, "python3", 60, None), cluster.k8s_settings
        )
        for run_id in (ended_run, 999_999)
    ]
    cluster.kubelet.hold.update(pod["metadata"]["name"] for pod in stale)
    for pod in stale:
        await _in(cluster.calls, cluster.core.create_namespaced_pod, cluster.namespace, pod)
    # A run whose executor died and whose pod is gone too.
    lost = await cluster.submit(path)
    async with cluster.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(Job)
            .where(Job.id == lost)
            .values(status="running", lease_owner="dead:1:0", worker="dead:1:0", started_at=jobs.utcnow())
            .values(lease_expires_at=text("now() - interval '1 minute'"))
        )
    await cluster.start_executor("exec-a", workers=1)
    for _ in range(100):
        if not await cluster.pods():
            break
        await asyncio.sleep(0.1)
    assert await cluster.pods() == []
    job = await cluster.ended(lost, within=20)
    assert job.status == "failed"
    assert job.error_message == jobs.EXECUTOR_LOST
