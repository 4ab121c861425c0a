"""``sandbox``: each run's kernel in its owner's sandbox, warm.

How warm kernels survive isolation: per user with runs, one zygote is started *inside that user's
sandbox* (``kernels.SandboxZygote``: bubblewrap with the user's folder at ``/home/<user>``, the runtime
read-only, nothing else) and kept warm while the user has runs (closed after
``NBP_EXECUTOR_SANDBOX_IDLE_SECONDS`` without one). It has imported ipykernel once; each kernel is a fork
of it -- a new process per run, in a PID namespace of its own, without capabilities -- so a run pays a
``fork`` instead of an interpreter start, and a pool keeps ``NBP_EXECUTOR_KERNEL_POOL_SIZE`` forked
kernels ready per user. A user's first run (or first after the idle time) starts the sandbox's zygote.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from nbp_common.sandbox import Limits, Sandbox, SandboxKind, bubblewrap

from nbp_executor.intake.workspace import user_folder
from nbp_executor.runners.kernels import KernelPool, KernelStartError, SandboxZygote, WarmKernel
from nbp_executor.settings import ExecutorSettings, RunnerName

logger = logging.getLogger("nbp.executor.sandbox")


@dataclass
class _UserPool:
    pool: KernelPool
    in_use: int = 0
    last_used: float = field(default_factory=time.monotonic)


class SandboxRunner:
    name: RunnerName = "sandbox"

    def __init__(self, settings: ExecutorSettings) -> None:
        self.settings = settings
        self.limits: Limits | None = Limits(
            memory_bytes=settings.executor_sandbox_memory_mb << 20,
            cpu_seconds=settings.executor_sandbox_cpu_seconds,
            processes=settings.executor_sandbox_processes,
        )
        self._pools: dict[str, _UserPool] = {}
        self._owners: dict[int, str] = {}  # id(kernel) -> its user's pool
        self._kills: set[asyncio.Task[None]] = set()
        self._idle_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        bubblewrap()  # installed, or the executor does not start (SandboxUnavailable says how)
        self._idle_task = asyncio.create_task(self._close_idle(), name="nbp-sandbox-idle")

    def _pool(self, username: str) -> _UserPool:
        entry = self._pools.get(username)
        if entry is None:
            assert self.limits is not None
            folder = user_folder(self.settings.workspace, username)
            folder.mkdir(parents=True, exist_ok=True)
            # The process and memory limits hold the whole sandbox; CPU time is set per kernel.
            sandbox = Sandbox(
                username,
                folder,
                kind=SandboxKind.RUN,
                limits=Limits(self.limits.memory_bytes, None, self.limits.processes),
            )
            zygote = SandboxZygote(sandbox, self.limits.cpu_seconds)
            pool = KernelPool(
                self.settings.kernel_pool_size,
                folder,
                self.settings.executor_kernel_start_timeout,
                zygote,
                strict=True,
            )
            pool.start()
            entry = self._pools[username] = _UserPool(pool)
        entry.last_used = time.monotonic()
        return entry

    def warm(self, kernel_name: str, username: str | None = None) -> None:
        if username is not None:
            self._pool(username).pool.warm(kernel_name)

    async def take(self, kernel_name: str, username: str) -> WarmKernel:
        entry = self._pool(username)
        try:
            kernel = await entry.pool.take(kernel_name)
        except KernelStartError:
            if entry.pool.failure is not None and self._pools.get(username) is entry:
                del self._pools[username]  # the next run tries a new sandbox
                await entry.pool.close()
            raise
        entry.in_use += 1
        self._owners[id(kernel)] = username
        return kernel

    def discard(self, kernel: WarmKernel) -> None:
        username = self._owners.pop(id(kernel), None)
        entry = self._pools.get(username) if username is not None else None
        if entry is not None:
            entry.in_use -= 1
            entry.last_used = time.monotonic()
        task = asyncio.create_task(kernel.kill())
        self._kills.add(task)
        task.add_done_callback(self._kills.discard)

    async def _close_idle(self) -> None:
        idle = self.settings.executor_sandbox_idle_seconds
        while True:
            await asyncio.sleep(min(60.0, idle / 2))
            now = time.monotonic()
            for username, entry in list(self._pools.items()):
                if entry.in_use == 0 and now - entry.last_used > idle:
                    del self._pools[username]
                    logger.info("closing %s's idle sandbox", username)
                    await entry.pool.close()

    async def close(self) -> None:
        if self._idle_task is not None:
            self._idle_task.cancel()
            with contextlib.suppress(BaseException):
                await self._idle_task
        pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(*self._kills, return_exceptions=True)
        await asyncio.gather(*(entry.pool.close() for entry in pools), return_exceptions=True)
