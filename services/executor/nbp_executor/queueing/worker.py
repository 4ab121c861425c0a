"""Workers: claim a job, take a warm kernel, run the notebook, watch it (lease, progress, cancel,
timeout), record the ending. And the reaper, which every executor process runs: expired leases are
retried or failed, so nothing stays ``running`` after its executor died."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from nbp_common.events import ExecutionStatus
from nbp_common.sandbox import SandboxUnavailable
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from nbp_executor.intake.workspace import user_folder
from nbp_executor.models import Job
from nbp_executor.queueing import jobs, wakeups
from nbp_executor.queueing.wakeups import Notifications, Signal
from nbp_executor.runners import PodRunner, Runner, RunSignals
from nbp_executor.runners.kernels import KernelStartError, WarmKernel
from nbp_executor.runners.papermill_run import (
    CellTimeoutError,
    DeadKernelError,
    NotebookRun,
    Outcome,
    Progress,
)
from nbp_executor.settings import ExecutorSettings

logger = logging.getLogger("nbp.executor.worker")

MEMORY_ERRORS = ("MemoryError", "_ArrayMemoryError")  # Python's, numpy's


@dataclass
class Context:
    settings: ExecutorSettings
    sessionmaker: async_sessionmaker[AsyncSession]
    notifications: Notifications
    runner: Runner | PodRunner


class LeaseLost(RuntimeError):
    pass


class Worker:
    def __init__(self, ctx: Context, identity: str) -> None:
        self.ctx = ctx
        self.identity = identity
        self.current: int | None = None

    async def run(self) -> None:
        settings = self.ctx.settings
        signal = self.ctx.notifications[wakeups.JOBS]
        while True:
            ticket = signal.ticket()
            try:
                job = await jobs.claim(self.ctx.sessionmaker, self.identity, settings.executor_lease_seconds)
            except Exception:
                logger.exception("claim failed; retrying")
                await asyncio.sleep(1.0)
                continue
            if job is None:
                # Woken by NOTIFY when a job is queued; a retry waiting out its backoff is due at its
                # not_before, which no NOTIFY announces: sleep until then at the longest.
                delay = settings.executor_poll_seconds
                try:
                    held = await jobs.seconds_to_claimable(self.ctx.sessionmaker)
                except Exception:
                    logger.exception("reading the next retry's start failed; polling")
                    held = None
                if held is not None:
                    delay = min(delay, max(0.05, held))
                await signal.wait(ticket, delay)
                continue
            self.current = job.id
            try:
                await self.execute(job)
            except asyncio.CancelledError:
                await self.give_back(job)
                raise
            except Exception:
                logger.exception("run %s: unexpected error", job.id)
                with contextlib.suppress(Exception):
                    await jobs.finish(
                        self.ctx.sessionmaker,
                        job.id,
                        self.identity,
                        Outcome(ExecutionStatus.FAILED, "internal error in the executor (see its log)"),
                        None,
                    )
            finally:
                self.current = None

    async def give_back(self, job: Job) -> None:
        """The process is stopping: give the job back (retry or fail by policy); a run in a pod goes
        on, and the next reaper takes it over."""
        with contextlib.suppress(Exception):
            if isinstance(self.ctx.runner, PodRunner):
                await asyncio.shield(jobs.hand_over(self.ctx.sessionmaker, job.id, self.identity))
            else:
                await asyncio.shield(
                    jobs.release(
                        self.ctx.sessionmaker, job.id, self.identity, "executor stopped during the run"
                    )
                )

    @property
    def kernels(self) -> Runner:
        runner = self.ctx.runner
        assert not isinstance(runner, PodRunner)
        return runner

    async def follow(self, job: Job, runner: PodRunner, create: bool = True) -> None:
        """A run done elsewhere (its pod), from claim or take-over to ending: the lease kept alive,
        the progress stored, a cancel passed on."""
        progress = Progress(cells_total=job.cells_total or 0)
        signals = RunSignals()
        keeper = asyncio.create_task(self._keep_lease(job, progress, signals))
        try:
            outcome = await runner.execute(job, progress, signals, create)
            if outcome is None:
                logger.warning("run %s: lease lost; another executor owns it now", job.id)
                return
            await self._finish(job, outcome, progress)
        finally:
            keeper.cancel()
            with contextlib.suppress(BaseException):
                await keeper

    async def execute(self, job: Job) -> None:
        """From claim to ending. The lease is kept alive the whole time by a separate task, so that
        nothing the run waits for (a kernel, the database, a slow cell) lets it expire."""
        if isinstance(self.ctx.runner, PodRunner):
            await self.follow(job, self.ctx.runner)
            return
        settings = self.ctx.settings
        folder = user_folder(settings.workspace, job.username)
        input_path = folder / job.input_path
        output_ref = job.output_path if "://" in job.output_path else str(folder / job.output_path)
        run = NotebookRun(
            Path(input_path), output_ref, job.parameters, job.kernel_name, job.cell_timeout_seconds
        )
        lease = RunSignals()
        keeper = asyncio.create_task(self._keep_lease(job, run.progress, lease))
        # The run's time counts from its claim: a kernel still starting (a user's first run starts
        # their sandbox) is part of it, and so is a cancel that arrives meanwhile.
        deadline = asyncio.get_running_loop().time() + job.timeout_seconds
        try:
            try:
                await run.prepare()
            except Exception as exc:
                await self._finish(
                    job, Outcome(ExecutionStatus.FAILED, f"the notebook could not be prepared: {exc}"), None
                )
                return
            try:
                taken = await self._take_kernel(job, run, lease, deadline)
            except (KernelStartError, SandboxUnavailable) as exc:
                await self._finish(job, Outcome(ExecutionStatus.FAILED, str(exc)), run.progress)
                return
            except LeaseLost:
                logger.warning("run %s: lease lost; another executor owns it now", job.id)
                return
            if isinstance(taken, Outcome):
                await self._finish(job, taken, run.progress)
                return
            kernel = taken
            try:
                outcome = await self._watch(job, run, kernel, lease, deadline)
            except LeaseLost:
                logger.warning("run %s: lease lost; another executor owns it now", job.id)
                return
            finally:
                self.kernels.discard(kernel)  # one kernel, one run
            await self._finish(job, self._name_the_limit(outcome), run.progress)
        finally:
            keeper.cancel()
            with contextlib.suppress(BaseException):
                await keeper

    async def _keep_lease(self, job: Job, progress: Progress, lease: RunSignals) -> None:
        """Renew the lease (and store the progress) until cancelled; flag a cancel or a lost lease."""
        settings = self.ctx.settings
        cancel_signal = self.ctx.notifications[wakeups.CANCEL]
        loop = asyncio.get_running_loop()
        written = -1
        next_beat = 0.0
        while True:
            ticket = cancel_signal.ticket(job.id)
            now = loop.time()
            if now >= next_beat or progress.version != written:
                version = progress.version
                try:
                    answer = await jobs.heartbeat(
                        self.ctx.sessionmaker,
                        job.id,
                        self.identity,
                        settings.executor_lease_seconds,
                        progress,
                    )
                except Exception:
                    logger.exception("run %s: heartbeat failed; retrying", job.id)
                    answer = False
                else:
                    written = version
                    next_beat = now + settings.heartbeat_seconds
                if answer is None:
                    lease.lost.set()
                    return
                if answer:
                    lease.cancel.set()
            if await Signal.wait(ticket, settings.executor_progress_seconds):
                lease.cancel.set()

    async def _finish(self, job: Job, outcome: Outcome, progress: Progress | None) -> None:
        done = await jobs.finish(self.ctx.sessionmaker, job.id, self.identity, outcome, progress)
        logger.info("run %s: %s%s", job.id, outcome.status, "" if done else " (not recorded: lease lost)")

    async def _take_kernel(
        self, job: Job, run: NotebookRun, lease: RunSignals, deadline: float
    ) -> WarmKernel | Outcome:
        """A kernel for the run, or how the run ended while one was starting (cancel, timeout)."""
        loop = asyncio.get_running_loop()
        take = asyncio.create_task(self.kernels.take(job.kernel_name, job.username))
        waiters = [asyncio.ensure_future(lease.cancel.wait()), asyncio.ensure_future(lease.lost.wait())]
        try:
            await asyncio.wait(
                [take, *waiters],
                timeout=max(0.0, deadline - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        if take.done():
            return take.result()
        take.cancel()
        with contextlib.suppress(BaseException):
            self.kernels.discard(await take)  # it was ready at that very moment: one kernel, one run
        if lease.lost.is_set():
            raise LeaseLost()
        if lease.cancel.is_set():
            return await run.finish(ExecutionStatus.CANCELLED, None, "cancelled on request")
        return await run.finish(
            ExecutionStatus.TIMED_OUT,
            TimeoutError(f"the run exceeded {job.timeout_seconds} s"),
            f"timed out: the run took longer than its {job.timeout_seconds} s limit",
        )

    async def _watch(
        self, job: Job, run: NotebookRun, kernel: WarmKernel, lease: RunSignals, deadline: float
    ) -> Outcome:
        """Run the cells in a task and watch it: cancel (interrupt, then kill), timeout, lost lease."""
        settings = self.ctx.settings
        task = asyncio.create_task(run.execute(kernel))
        loop = asyncio.get_running_loop()
        interrupted_at: float | None = None
        stop_reason: ExecutionStatus | None = None  # CANCELLED or TIMED_OUT
        lease_lost = False
        waiters = [asyncio.ensure_future(lease.cancel.wait()), asyncio.ensure_future(lease.lost.wait())]
        try:
            while not task.done():
                if lease.lost.is_set():
                    lease_lost = True
                    task.cancel()
                    break
                if lease.cancel.is_set() and interrupted_at is None:
                    stop_reason = ExecutionStatus.CANCELLED
                    await kernel.interrupt()  # a KeyboardInterrupt in the cell ends the run gracefully
                    interrupted_at = loop.time()
                grace_left = None
                if interrupted_at is not None:
                    grace_left = interrupted_at + settings.executor_cancel_grace_seconds - loop.time()
                    if grace_left <= 0:
                        task.cancel()  # the cell ignored the interrupt: its kernel is killed after
                        break
                if loop.time() >= deadline:
                    stop_reason = ExecutionStatus.TIMED_OUT
                    task.cancel()
                    break
                wait_for = deadline - loop.time()
                if grace_left is not None:
                    wait_for = min(wait_for, grace_left)
                pending = [task, *(w for w in waiters if not w.done())]
                await asyncio.wait(pending, timeout=max(0.0, wait_for), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise
        finally:
            for waiter in waiters:
                waiter.cancel()
        exc: BaseException | None = None
        try:
            await task
        except asyncio.CancelledError as cancelled:
            exc = cancelled
        except Exception as error:
            exc = error
        if lease_lost:
            raise LeaseLost()
        if stop_reason is ExecutionStatus.TIMED_OUT:
            return await run.finish(
                ExecutionStatus.TIMED_OUT,
                TimeoutError(f"the run exceeded {job.timeout_seconds} s"),
                f"timed out: the run took longer than its {job.timeout_seconds} s limit",
            )
        if stop_reason is ExecutionStatus.CANCELLED:
            return await run.finish(ExecutionStatus.CANCELLED, exc, "cancelled on request")
        if isinstance(exc, CellTimeoutError):
            return await run.finish(
                ExecutionStatus.TIMED_OUT,
                exc,
                f"timed out: a cell ran longer than its {job.cell_timeout_seconds} s limit",
            )
        if isinstance(exc, DeadKernelError):
            return await run.finish(ExecutionStatus.FAILED, exc, await self._death_reason(kernel))
        if exc is not None:
            return await run.finish(
                ExecutionStatus.FAILED, exc, f"the run failed: {type(exc).__name__}: {exc}"
            )
        return await run.finish(ExecutionStatus.COMPLETED)

    def _name_the_limit(self, outcome: Outcome) -> Outcome:
        """A run stopped by one of the sandbox's limits says which (the cell's error stays recorded)."""
        limits = self.kernels.limits
        error = outcome.error
        if limits is None or outcome.status != ExecutionStatus.FAILED or error is None or error.ename is None:
            return outcome
        described = limits.describe()
        if error.ename in MEMORY_ERRORS and "memory" in described:
            limit = described["memory"]
        elif error.ename == "BlockingIOError" and "processes" in described:
            limit = described["processes"]  # fork/clone: EAGAIN at the process limit
        else:
            return outcome
        outcome.error_message = f"the run reached its {limit}: {outcome.error_message}"
        return outcome

    async def _death_reason(self, kernel: WarmKernel) -> str:
        code = None
        with contextlib.suppress(Exception):
            process = getattr(kernel.km.provisioner, "process", None)
            if process is not None:
                code = process.poll()
        if code is not None and code < 0:
            import signal as _signal

            name = _signal.Signals(-code).name if -code in _signal.Signals._value2member_map_ else str(-code)
            limits = self.kernels.limits
            if name == "SIGXCPU" and limits is not None and limits.cpu_seconds is not None:
                return f"kernel died: the run reached its {limits.describe()['cpu']}"
            hint = " (out of memory?)" if name == "SIGKILL" else ""
            return f"kernel died: killed by {name}{hint}"
        if code is not None:
            return f"kernel died: the kernel process exited with code {code}"
        return "kernel died"


class Reaper:
    """Expired leases: a run whose pod still exists is taken over and followed (its executor died or
    stopped); any other is retried or failed. With pods, also the other way: a run pod that no running
    run owns (its run ended, was retried, or never was) is deleted."""

    def __init__(self, ctx: Context, identity: str) -> None:
        self.ctx = ctx
        self.identity = identity
        self._followers: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            for task in self._followers:
                task.cancel()
            await asyncio.gather(*self._followers, return_exceptions=True)

    async def reconcile_pods(self, runner: PodRunner) -> None:
        pods = await runner.run_pods()
        live = await jobs.live_attempts(self.ctx.sessionmaker, sorted({pod.run_id for pod in pods}))
        for pod in pods:
            if live.get(pod.run_id) != pod.attempt:
                logger.warning("deleting run pod %s: no running run owns it", pod.name)
                await runner.delete(pod.name)
        owned = {pod.run_id: pod.attempt for pod in pods if live.get(pod.run_id) == pod.attempt}
        follower = Worker(self.ctx, f"{self.identity}:taken-over")
        for job in await jobs.take_over(
            self.ctx.sessionmaker, owned, follower.identity, self.ctx.settings.executor_lease_seconds
        ):
            logger.warning("run %s: its executor stopped; following its pod from here", job.id)
            task = asyncio.create_task(self._follow(follower, job, runner), name=f"nbp-follow-{job.id}")
            self._followers.add(task)
            task.add_done_callback(self._followers.discard)

    async def _follow(self, follower: Worker, job: Job, runner: PodRunner) -> None:
        try:
            await follower.follow(job, runner, create=False)
        except asyncio.CancelledError:
            await follower.give_back(job)
            raise
        except Exception:
            logger.exception("run %s: following its pod failed", job.id)

    async def _run(self) -> None:
        while True:
            # Following pods is workers' work: an API-only process (no workers) leaves them alone.
            if isinstance(self.ctx.runner, PodRunner) and self.ctx.settings.executor_workers:
                try:
                    await self.reconcile_pods(self.ctx.runner)
                except Exception:
                    logger.exception("reconciling run pods failed")
            try:
                count = await jobs.reap(self.ctx.sessionmaker)
                if count:
                    logger.warning("reaped %d run(s) whose executor stopped renewing its lease", count)
                    continue
            except Exception:
                logger.exception("reaper pass failed")
            await asyncio.sleep(self.ctx.settings.reap_seconds)
