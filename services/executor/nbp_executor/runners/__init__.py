"""Where a run's kernel runs, chosen by ``NBP_EXECUTOR_RUNNER``:

- ``sandbox`` (the default): each kernel in its owner's sandbox (``nbp_common.sandbox``), forked warm
  from a zygote kept inside that sandbox (``sandbox.SandboxRunner``);
- ``trusted``: kernels forked inside the executor with its own rights, for a single-user machine only
  (``trusted.TrustedRunner``; refused under Keycloak unless explicitly allowed).
"""

from __future__ import annotations

import logging
from typing import Protocol

from nbp_common.auth import AuthSettings
from nbp_common.sandbox import Limits

from nbp_executor.runners.kernels import WarmKernel
from nbp_executor.settings import ExecutorSettings, RunnerName

logger = logging.getLogger("nbp.executor.runners")


class Runner(Protocol):
    name: RunnerName
    limits: Limits | None  # what a run may use (None: nothing but the run's timeout)

    def start(self) -> None: ...

    def warm(self, kernel_name: str, username: str | None = None) -> None: ...

    async def take(self, kernel_name: str, username: str) -> WarmKernel: ...

    def discard(self, kernel: WarmKernel) -> None: ...

    async def close(self) -> None: ...


class RunnerRefused(RuntimeError):
    """The configured runner may not run here (the message says why and what to set)."""


def build_runner(settings: ExecutorSettings, auth: AuthSettings) -> Runner:
    from nbp_executor.runners.sandbox import SandboxRunner
    from nbp_executor.runners.trusted import TrustedRunner

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
