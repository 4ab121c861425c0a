"""Warm kernels: a few kernels started ahead per kernel name, each handed to exactly one run and then
shut down. A run never waits for a kernel to start unless the pool is empty (and never shares one).

Kernels are forked from a zygote (``forkserver``): the executor's own (``trusted``), or one
per user started inside that user's sandbox (``SandboxZygote``, the ``sandbox`` runner). Trusted
kernels run with the executor's environment minus its own settings (``NBP_*``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbp_common.sandbox import Prepared, Sandbox, prepare, spawn

logger = logging.getLogger("nbp.executor.kernels")


class KernelStartError(RuntimeError):
    pass


@dataclass
class WarmKernel:
    name: str
    km: Any  # AsyncKernelManager
    kc: Any  # AsyncKernelClient
    # (the owner's folder on the host, where the kernel sees it) for a sandboxed kernel
    home: tuple[Path, PurePosixPath] | None = None
    started_at: float = field(default_factory=time.monotonic)

    def path_inside(self, path: Path) -> str:
        """Where the kernel sees ``path`` (a path in the owner's folder on the host)."""
        if self.home is None:
            return str(path)
        host, inside = self.home
        return str(inside / path.relative_to(host))

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
    """The fork server (``nbp_executor.runners.forkserver``), started once per executor process: trusted."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="nbp-zygote-")
        self.path = os.path.join(self.directory, "socket")
        self.process: asyncio.subprocess.Process | None = None
        self.ready = False

    async def _spawn(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "nbp_executor.runners.forkserver",
            "serve",
            "--socket",
            self.path,
            stdout=asyncio.subprocess.PIPE,
            env={**kernel_environment(), "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
        )

    async def start(self, within: float = 60.0) -> None:
        self.process = await self._spawn()
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
        return [
            "python",
            "-m",
            "nbp_executor.runners.forkserver",
            "kernel",
            self.path,
            "-f",
            "{connection_file}",
        ]

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
        with contextlib.suppress(OSError):
            os.rmdir(self.directory)


FORKSERVER_INSIDE = "/run/nbp/forkserver.py"


class SandboxZygote(Zygote):
    """A zygote inside one user's sandbox: every kernel it forks sees that user's folder and nothing
    else, in a PID namespace of its own, without capabilities, under the sandbox's limits."""

    def __init__(self, sandbox: Sandbox, cpu_seconds: int | None) -> None:
        super().__init__()
        self.sandbox = replace(
            sandbox,
            packages=("nbp",),  # nbp.record, for notebooks
            read_only={FORKSERVER_INSIDE: Path(__file__).with_name("forkserver.py")},
            nested_namespaces=True,
            env={**sandbox.env, "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
        )
        self.cpu_seconds = cpu_seconds
        self._prepared: Prepared | None = None

    @property
    def home(self) -> tuple[Path, PurePosixPath]:
        return Path(os.path.realpath(self.sandbox.folder)), PurePosixPath(self.sandbox.home)

    async def _spawn(self) -> asyncio.subprocess.Process:
        # The executor listens (the stand-ins connect from outside); the zygote accepts inside.
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.bind(self.path)
            argv = [sys.executable, FORKSERVER_INSIDE, "serve", "--fd", str(server.fileno()), "--confine"]
            if self.cpu_seconds is not None:
                argv += ["--cpu-seconds", str(self.cpu_seconds)]
            self._prepared = prepare(self.sandbox, argv)
            return await spawn(self._prepared, stdout=asyncio.subprocess.PIPE, pass_fds=(server.fileno(),))
        finally:
            server.close()

    async def close(self) -> None:
        await super().close()
        if self._prepared is not None:
            self._prepared.close()
            self._prepared = None


async def _first_execution(kc: Any, within: float) -> None:
    """Run a no-op before the kernel waits in the pool: a kernel's first execution pays for work its
    shell does once (tens of ms), which would otherwise be part of a run's latency."""
    msg_id = kc.execute("pass", silent=True, store_history=False)
    deadline = time.monotonic() + within
    while True:
        reply = await kc.get_shell_msg(timeout=max(0.0, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return


async def start_kernel(
    name: str, cwd: Path, ready_within: float, zygote: Zygote | None = None, strict: bool = False
) -> WarmKernel:
    """A started kernel; ``strict``: only one forked from ``zygote`` (a sandbox), never another kind."""
    km = AsyncKernelManager(kernel_name=name)
    if zygote is not None and zygote.serves(km.kernel_spec):
        km.kernel_spec.argv = zygote.argv()
    elif strict:
        raise KernelStartError(
            f"kernel {name!r} cannot run in the sandbox: only Python kernels of the executor's own "
            "interpreter are forked inside it"
        )
    home = zygote.home if isinstance(zygote, SandboxZygote) else None
    kc = None
    try:
        await km.start_kernel(env=kernel_environment(), cwd=str(cwd))
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=ready_within)
        await _first_execution(kc, ready_within)
    except BaseException as exc:
        await WarmKernel(name, km, kc).kill()
        if isinstance(exc, Exception):
            raise KernelStartError(f"kernel {name!r} did not start: {exc}") from exc
        raise
    return WarmKernel(name, km, kc, home)


class KernelPool:
    """``size`` started kernels per kernel name, refilled in the background as runs take them.
    ``strict``: every kernel comes from the zygote (a sandbox's), or none starts."""

    def __init__(
        self, size: int, cwd: Path, start_timeout: float, zygote: Zygote | None, strict: bool = False
    ) -> None:
        self.size = size
        self.zygote: Zygote | None = zygote
        self.strict = strict
        self.failure: str | None = None
        self._zygote_task: asyncio.Task[None] | None = None
        self.cwd = cwd
        self.start_timeout = start_timeout
        # A strict pool hands a waiting run the error of a kernel that could not start.
        self._ready: dict[str, asyncio.Queue[WarmKernel | KernelStartError]] = {}
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
        except Exception as exc:
            await self.zygote.close()
            if self.strict:
                self.failure = f"the sandbox did not start: {type(exc).__name__}: {exc}"
                logger.error("%s", self.failure)
                return
            logger.error("kernel fork server unavailable (%s); kernels start as new interpreters", exc)
            self.zygote = None

    async def _ready_zygote(self) -> Zygote | None:
        if self._zygote_task is not None and not self._zygote_task.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self._zygote_task)
        if self.failure is not None:
            raise KernelStartError(self.failure)
        return self.zygote if self.zygote is not None and self.zygote.ready else None

    async def _start(self, name: str) -> WarmKernel:
        zygote = await self._ready_zygote()
        return await start_kernel(name, self.cwd, self.start_timeout, zygote, self.strict)

    def _queue(self, name: str) -> asyncio.Queue[WarmKernel | KernelStartError]:
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
            kernel = await self._start(name)
            if self._closed:
                await kernel.kill()
                return
            self._queue(name).put_nowait(kernel)
        except KernelStartError as exc:
            logger.error("warm kernel: %s", exc)
            if self.strict:
                self._queue(name).put_nowait(exc)
            else:
                await asyncio.sleep(1.0)  # do not spin on a broken kernel spec
        finally:
            self._starting[name] -= 1

    async def take(self, name: str) -> WarmKernel:
        """A started kernel of ``name`` for one run: the caller must ``kill()`` it afterwards."""
        queue = self._queue(name)
        while True:
            self.warm(name)
            if self.size == 0:
                kernel = await self._start(name)
            else:
                if self.failure is not None:
                    raise KernelStartError(self.failure)
                item = await queue.get()
                if isinstance(item, KernelStartError):
                    if self.failure is not None:
                        raise item
                    kernel = await self._start(name)  # once more, now: the cause may have passed
                else:
                    kernel = item
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
                item = queue.get_nowait()
                if isinstance(item, WarmKernel):
                    kernels.append(item)
        await asyncio.gather(*(k.kill() for k in kernels), return_exceptions=True)
        await asyncio.gather(*self._tasks, *self._kills, return_exceptions=True)
        if self._zygote_task is not None and not self._zygote_task.done():
            self._zygote_task.cancel()
            with contextlib.suppress(BaseException):
                await self._zygote_task
        if self.zygote is not None:
            await self.zygote.close()
