"""Warm kernels: a few kernels started ahead per kernel name, each handed to exactly one run and then
shut down. A run never waits for a kernel to start unless the pool is empty (and never shares one).

The kernels run with the executor's environment minus its own settings (``NBP_*``: database URL,
credentials): notebook code has no business reading them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

logger = logging.getLogger("nbp.executor.kernels")


class KernelStartError(RuntimeError):
    pass


@dataclass
class WarmKernel:
    name: str
    km: Any  # AsyncKernelManager
    kc: Any  # AsyncKernelClient
    started_at: float = field(default_factory=time.monotonic)

    async def is_alive(self) -> bool:
        try:
            return bool(await self.km.is_alive())
        except Exception:
            return False

    async def interrupt(self) -> None:
        with contextlib.suppress(Exception):
            await self.km.interrupt_kernel()

    async def kill(self) -> None:
        """Stop the kernel now (no graceful shutdown request: the run is over either way)."""
        with contextlib.suppress(Exception):
            self.kc.stop_channels()
        try:
            await self.km.shutdown_kernel(now=True)
        except Exception:  # already dead, or never fully started
            with contextlib.suppress(Exception):
                await self.km.cleanup_resources()


def kernel_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    return {k: v for k, v in (base or os.environ).items() if not k.startswith("NBP_")}


_specs_cache: tuple[float, frozenset[str]] = (0.0, frozenset())


def kernel_names(max_age: float = 30.0) -> frozenset[str]:
    """Installed kernel names (as Jupyter finds them), cached briefly."""
    global _specs_cache
    stamp, names = _specs_cache
    if time.monotonic() - stamp > max_age or not names:
        names = frozenset(KernelSpecManager().find_kernel_specs())
        _specs_cache = (time.monotonic(), names)
    return names


class Zygote:
    """The fork server (``nbp_executor.forkserver``), started once per executor process."""

    def __init__(self) -> None:
        self.path = os.path.join(tempfile.mkdtemp(prefix="nbp-zygote-"), "socket")
        self.process: asyncio.subprocess.Process | None = None
        self.ready = False

    async def start(self, within: float = 60.0) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "nbp_executor.forkserver",
            "serve",
            self.path,
            stdout=asyncio.subprocess.PIPE,
            env={**kernel_environment(), "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), within)
        if line.strip() != b"ready":
            raise KernelStartError("the kernel fork server did not start")
        self.ready = True

    def serves(self, spec: Any) -> bool:
        """Only kernels that run ipykernel in this very interpreter can be forked from the zygote."""
        argv = list(getattr(spec, "argv", []) or [])
        python_names = {"python", "python3", f"python3.{sys.version_info[1]}", sys.executable}
        return (
            self.ready
            and len(argv) >= 3
            and argv[0] in python_names
            and argv[1:3] == ["-m", "ipykernel_launcher"]
        )

    def argv(self) -> list[str]:
        return ["python", "-m", "nbp_executor.forkserver", "kernel", self.path, "-f", "{connection_file}"]

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
            os.rmdir(os.path.dirname(self.path))


async def start_kernel(name: str, cwd: Path, ready_within: float, zygote: Zygote | None = None) -> WarmKernel:
    km = AsyncKernelManager(kernel_name=name)
    if zygote is not None and zygote.serves(km.kernel_spec):
        km.kernel_spec.argv = zygote.argv()
    kc = None
    try:
        await km.start_kernel(env=kernel_environment(), cwd=str(cwd))
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=ready_within)
    except BaseException as exc:
        await WarmKernel(name, km, kc).kill()
        if isinstance(exc, Exception):
            raise KernelStartError(f"kernel {name!r} did not start: {exc}") from exc
        raise
    return WarmKernel(name, km, kc)


class KernelPool:
    """``size`` started kernels per kernel name, refilled in the background as runs take them."""

    def __init__(self, size: int, cwd: Path, start_timeout: float, fork: bool = True) -> None:
        self.size = size
        self.zygote: Zygote | None = Zygote() if fork else None
        self._zygote_task: asyncio.Task[None] | None = None
        self.cwd = cwd
        self.start_timeout = start_timeout
        self._ready: dict[str, asyncio.Queue[WarmKernel]] = {}
        self._starting: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # kernels starting
        self._kills: set[asyncio.Task[None]] = set()  # used kernels being shut down
        self._closed = False

    def start(self) -> None:
        """Start the fork server in the background (the app does not wait for it)."""
        if self.zygote is not None and self._zygote_task is None:
            self._zygote_task = asyncio.create_task(self._start_zygote())

    async def _start_zygote(self) -> None:
        assert self.zygote is not None
        try:
            await self.zygote.start(self.start_timeout)
        except (KernelStartError, OSError, TimeoutError) as exc:
            logger.error("kernel fork server unavailable (%s); kernels start as new interpreters", exc)
            await self.zygote.close()
            self.zygote = None

    async def _ready_zygote(self) -> Zygote | None:
        if self._zygote_task is not None and not self._zygote_task.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self._zygote_task)
        return self.zygote if self.zygote is not None and self.zygote.ready else None

    def _queue(self, name: str) -> asyncio.Queue[WarmKernel]:
        return self._ready.setdefault(name, asyncio.Queue())

    def warm(self, name: str) -> None:
        """Start kernels of ``name`` in the background until ``size`` are ready or starting."""
        if self._closed:
            return
        missing = self.size - self._queue(name).qsize() - self._starting.get(name, 0)
        for _ in range(max(0, missing)):
            self._starting[name] = self._starting.get(name, 0) + 1
            task = asyncio.create_task(self._fill(name))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _fill(self, name: str) -> None:
        try:
            kernel = await start_kernel(name, self.cwd, self.start_timeout, await self._ready_zygote())
            if self._closed:
                await kernel.kill()
                return
            self._queue(name).put_nowait(kernel)
        except KernelStartError as exc:
            logger.error("warm kernel: %s", exc)
            await asyncio.sleep(1.0)  # do not spin on a broken kernel spec
        finally:
            self._starting[name] -= 1

    async def take(self, name: str) -> WarmKernel:
        """A started kernel of ``name`` for one run: the caller must ``kill()`` it afterwards."""
        queue = self._queue(name)
        while True:
            self.warm(name)
            if self.size == 0:
                kernel = await start_kernel(name, self.cwd, self.start_timeout, await self._ready_zygote())
            else:
                kernel = await queue.get()
            self.warm(name)
            if await kernel.is_alive():
                return kernel
            logger.warning("a warm %s kernel died while waiting; starting another", name)
            await kernel.kill()

    def discard(self, kernel: WarmKernel) -> None:
        """Kill a used kernel in the background: the worker goes on to its next run at once."""
        task = asyncio.create_task(kernel.kill())
        self._kills.add(task)
        task.add_done_callback(self._kills.discard)

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        kernels: list[WarmKernel] = []
        for queue in self._ready.values():
            while not queue.empty():
                kernels.append(queue.get_nowait())
        await asyncio.gather(*(k.kill() for k in kernels), return_exceptions=True)
        await asyncio.gather(*self._tasks, *self._kills, return_exceptions=True)
        if self._zygote_task is not None and not self._zygote_task.done():
            self._zygote_task.cancel()
            with contextlib.suppress(BaseException):
                await self._zygote_task
        if self.zygote is not None:
            await self.zygote.close()
