"""The executor's own settings (prefix ``NBP_``), beside the shared ones in ``nbp_common.settings``."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

RunnerName = Literal["sandbox", "trusted", "kubernetes"]


class ExecutorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NBP_", extra="ignore")

    # Users' notebooks live in <workspace>/<username>/ (the volume JupyterHub mounts as homes).
    workspace: Path = Path(".nbp/workspace")
    # The executor calls both over HTTP, even inside the all-in-one dev server.
    registry_url: str = "http://127.0.0.1:8002"
    history_url: str = "http://127.0.0.1:8002"
    http_timeout_seconds: float = Field(default=10.0, gt=0)

    # Where runs run (see nbp_executor.runners): each kernel in its owner's sandbox, or trusted (inside
    # the executor, a single-user machine only: refused under Keycloak unless explicitly allowed), or
    # each run a pod of its own (kubernetes; its settings: runners/kubernetes/settings.py).
    executor_runner: RunnerName = "sandbox"
    executor_allow_trusted: bool = False
    # The sandbox's limits: memory (address space of each process), CPU time of each kernel,
    # processes of a user's sandbox; and how long a user's idle sandbox (its warm zygote) is kept.
    executor_sandbox_memory_mb: int = Field(default=4096, ge=256)
    executor_sandbox_cpu_seconds: int | None = Field(default=3600, ge=1)
    executor_sandbox_processes: int = Field(default=256, ge=16)
    executor_sandbox_idle_seconds: float = Field(default=600.0, gt=0)

    executor_workers: int = Field(default=2, ge=0, le=64)
    executor_max_attempts: int = Field(default=1, ge=1, le=100)
    # Warm kernels kept started per kernel name (default: one per worker).
    executor_kernel_pool_size: int | None = Field(default=None, ge=0, le=64)
    executor_kernel_start_timeout: float = Field(default=60.0, gt=0)
    # Fork python3 kernels from a zygote that has imported ipykernel (a new process per run, without
    # a second of imports each); false: every kernel is a new interpreter.
    executor_fork_kernels: bool = True
    executor_default_kernel: str = "python3"
    # A lease not renewed for this long is expired: its worker is presumed dead.
    executor_lease_seconds: float = Field(default=30.0, ge=1)
    # Workers are woken by NOTIFY; this poll is only the safety net if a notification is missed.
    executor_poll_seconds: float = Field(default=5.0, gt=0)
    executor_reap_seconds: float | None = Field(default=None, gt=0)
    executor_progress_seconds: float = Field(default=0.5, gt=0)
    executor_cancel_grace_seconds: float = Field(default=2.0, ge=0, le=4)
    executor_default_timeout_seconds: int = Field(default=3600, ge=1)
    executor_default_cell_timeout_seconds: int | None = Field(default=None, ge=1)
    executor_max_parameters_bytes: int = Field(default=64 * 1024, ge=1)
    # Outbox relay to the history: retry with exponential backoff up to this many seconds.
    executor_relay_max_backoff_seconds: float = Field(default=10.0, gt=0)
    executor_relay_batch: int = Field(default=200, ge=1)

    @property
    def kernel_pool_size(self) -> int:
        if self.executor_kernel_pool_size is not None:
            return self.executor_kernel_pool_size
        return self.executor_workers

    @property
    def reap_seconds(self) -> float:
        return self.executor_reap_seconds or max(0.5, self.executor_lease_seconds / 3)

    @property
    def heartbeat_seconds(self) -> float:
        return max(0.3, self.executor_lease_seconds / 3)


def process_identity() -> str:
    import os

    return f"{socket.gethostname()}:{os.getpid()}"
