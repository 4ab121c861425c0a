"""``trusted``: kernels forked from the executor's own zygote, as the executor's user, with its view of
the machine. One pool for every user. For a single-user machine only (see ``build_runner``)."""

from __future__ import annotations

from nbp_common.sandbox import Limits

from nbp_executor.runners.kernels import KernelPool, WarmKernel, Zygote
from nbp_executor.settings import ExecutorSettings, RunnerName


class TrustedRunner:
    name: RunnerName = "trusted"
    limits: Limits | None = None

    def __init__(self, settings: ExecutorSettings) -> None:
        self.pool = KernelPool(
            settings.kernel_pool_size,
            settings.workspace.resolve(),
            settings.executor_kernel_start_timeout,
            Zygote() if settings.executor_fork_kernels else None,
        )

    def start(self) -> None:
        self.pool.start()

    def warm(self, kernel_name: str, username: str | None = None) -> None:
        self.pool.warm(kernel_name)

    async def take(self, kernel_name: str, username: str) -> WarmKernel:
        return await self.pool.take(kernel_name)

    def discard(self, kernel: WarmKernel) -> None:
        self.pool.discard(kernel)

    async def close(self) -> None:
        await self.pool.close()
