"""One Linux sandbox for a user's code (bubblewrap): what the executor's kernels and JupyterHub's
single-user servers run in, so that a user's code sees its owner's folder and nothing else.

Inside: new user, mount, PID, IPC and UTS namespaces; the owner's folder bound read-write at
``/home/<username>`` (the working directory by default); the system's ``/usr`` and the Python runtime
(the interpreter's prefix, the virtual environment, a few named packages) read-only; a private ``/tmp``;
its own ``/proc`` and ``/dev``; a generated ``/etc/passwd``; no other file of the host (no workspace
root, no other user, no checkout, no ``/etc/shadow``). The environment is built from an allow-list per
kind of sandbox (``SandboxKind``): no ``NBP_*`` but the API's address ``NBP_URL``, nothing named like a
secret; a user's own JupyterHub server also gets its ``JUPYTERHUB_*`` (its own API token), a notebook run
none of them. Limits: memory (``RLIMIT_AS``), CPU time (``RLIMIT_CPU``) and processes --
``RLIMIT_NPROC``, which Linux counts per user namespace, i.e. per sandbox; for a root executor (whose
processes ``RLIMIT_NPROC`` does not bind) a ``pids`` cgroup per sandbox instead, and no sandbox at all
when neither can hold.

Use: ``prepared = prepare(Sandbox(...), argv)``, then start ``prepared.argv`` with
``pass_fds=prepared.pass_fds`` and ``preexec_fn=prepared.preexec_fn`` (``spawn`` does both for asyncio),
and ``prepared.close()`` once the process has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

BUBBLEWRAP_INSTALL = "apt-get install -y bubblewrap"
PRLIMIT = "/usr/bin/prlimit"
SANDBOX_UID = 1000  # the user's uid inside (mapped to the executor's own uid outside)
USERNAME_PATTERN = re.compile(r"^\w[\w.@-]*$")

# Variables a sandboxed process may receive: exact names, then prefixes.
ALLOWED_ENV = frozenset(
    {
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
        "TERM",
        "PYTHONUNBUFFERED",
        "PYTHONHASHSEED",
        "PYDEVD_DISABLE_FILE_VALIDATION",
        "MPLBACKEND",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
    }
)


class SandboxKind(StrEnum):
    """What runs inside, which decides what of the environment it may receive."""

    RUN = "run"  # a notebook run's kernel: nothing of JupyterHub
    SERVER = "server"  # a user's own JupyterHub server: its hub variables, its own API token included


ALLOWED_ENV_PREFIXES = ("JPY_", "JUPYTER_")
# A server's hub variables, whatever their name: JUPYTERHUB_API_TOKEN is the server's own token, which
# acts for its owner only. A run gets none of them (an executor's hub token would reach every run).
SERVER_ENV_PREFIX = "JUPYTERHUB_"
# The platform's own variables that are addresses, not secrets: the API the ``nbp`` client calls.
PUBLIC_NBP_ENV = frozenset({"NBP_URL"})
# Never passed, whatever the allow-list says.
_SECRET_NAME = re.compile(r"^NBP_|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE_KEY|_TOKEN$|^AWS_|^KUBERNETES_")
# /etc files a program may need that hold nothing of the host's (no shadow, no keys).
ETC_FILES = (
    "ld.so.cache",
    "localtime",
    "hosts",
    "resolv.conf",
    "nsswitch.conf",
    "host.conf",
    "mime.types",
    "ssl/certs",
    "ca-certificates.conf",
    "fonts",
    "alternatives",
)
# The base system: read-only. Merged-/usr systems have the others as symbolic links.
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be built here; the message says what to install or change."""


@dataclass(frozen=True)
class Limits:
    memory_bytes: int | None = 4 << 30  # address space of each process
    cpu_seconds: int | None = None  # CPU time of each process
    processes: int | None = 256  # processes and threads of the whole sandbox

    def describe(self) -> dict[str, str]:
        """Each limit as a person reads it (for error messages)."""
        described = {}
        if self.memory_bytes is not None:
            described["memory"] = f"memory limit of {self.memory_bytes >> 20} MiB"
        if self.cpu_seconds is not None:
            described["cpu"] = f"CPU-time limit of {self.cpu_seconds} s"
        if self.processes is not None:
            described["processes"] = f"process-count limit of {self.processes}"
        return described


@dataclass(frozen=True)
class Sandbox:
    username: str
    folder: Path  # the owner's folder on the host: /home/<username> inside
    kind: SandboxKind = SandboxKind.RUN
    cwd: str | None = None  # inside; the home folder by default
    env: Mapping[str, str] = field(default_factory=dict)  # checked against the allow-list
    limits: Limits = field(default_factory=Limits)
    # Importable packages that live outside the virtual environment (editable installs) and that the
    # code inside needs, bound read-only where they are.
    packages: Sequence[str] = ()
    # Extra read-only files: inside path -> host path.
    read_only: Mapping[str, Path] = field(default_factory=dict)
    share_network: bool = True  # loopback kernels (ZeroMQ over TCP) need the host's network
    # Keep CAP_SYS_ADMIN inside the sandbox's own user namespace, for a launcher that makes a PID
    # namespace per child and drops every capability before it runs user code (the executor's zygote).
    nested_namespaces: bool = False

    @property
    def home(self) -> str:
        return f"/home/{self.username}"


@dataclass
class Prepared:
    """A sandboxed command ready to start: keep ``pass_fds`` open until it has started."""

    argv: list[str]
    pass_fds: tuple[int, ...]
    cgroup: Path | None = None

    def preexec_fn(self) -> None:
        """In the child before ``exec``: join the sandbox's pids cgroup (its children follow)."""
        if self.cgroup is not None:
            with open(self.cgroup / "cgroup.procs", "w") as procs:
                procs.write(str(os.getpid()))

    def started(self) -> None:
        """The process has started (bubblewrap has read its data): close our ends."""
        for fd in self.pass_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.pass_fds = ()

    def close(self) -> None:
        """The process has ended: release what was made for it."""
        self.started()
        if self.cgroup is not None:
            # Whatever is still in it outlived the sandbox (bubblewrap killed before it could arrange
            # to take its children with it): it goes too.
            _end_cgroup(self.cgroup)
            _live_cgroups.discard(self.cgroup)  # if it is still there, the next sweep removes it
            self.cgroup = None


def bubblewrap() -> str:
    """The ``bwrap`` executable, or SandboxUnavailable naming the command that installs it."""
    found = shutil.which("bwrap")
    if found is None:
        raise SandboxUnavailable(f"bubblewrap (bwrap) is not installed: run `{BUBBLEWRAP_INSTALL}`")
    if not os.access(PRLIMIT, os.X_OK):
        raise SandboxUnavailable(f"{PRLIMIT} is missing: run `apt-get install -y util-linux`")
    return found


def sandbox_env(sandbox: Sandbox) -> dict[str, str]:
    """The whole environment inside: fixed values, then the allowed ones of ``sandbox.env``."""
    path = [f"{sys.prefix}/bin", "/usr/local/bin", "/usr/bin", "/bin"]
    env = {
        "PATH": ":".join(dict.fromkeys(path)),
        "HOME": sandbox.home,
        "USER": sandbox.username,
        "LOGNAME": sandbox.username,
        "SHELL": "/bin/sh",
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "IPYTHONDIR": "/tmp/ipython",
    }
    env.update({k: v for k, v in sandbox.env.items() if env_allowed(k, sandbox.kind)})
    return env


def env_allowed(name: str, kind: SandboxKind) -> bool:
    """Whether a sandbox of ``kind`` may receive the variable ``name``."""
    if name in PUBLIC_NBP_ENV:
        return True
    if kind is SandboxKind.SERVER and name.startswith(SERVER_ENV_PREFIX):
        return True
    if _SECRET_NAME.search(name.upper()):
        return False
    return name in ALLOWED_ENV or name.startswith(ALLOWED_ENV_PREFIXES)


def _runtime_paths(packages: Sequence[str]) -> list[Path]:
    """The interpreter's prefix, the virtual environment and the named packages' folders."""
    paths = [Path(sys.base_prefix), Path(sys.prefix)]
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise SandboxUnavailable(f"package {name!r} is not importable here")
        paths.extend(Path(p) for p in spec.submodule_search_locations)
    unique: list[Path] = []
    for path in sorted({p.resolve() for p in paths}, key=lambda p: len(p.parts)):
        if path.is_relative_to("/usr") or any(path.is_relative_to(u) for u in unique):
            continue
        unique.append(path)
    return unique


def _data_fd(data: bytes) -> int:
    """A pipe's read end holding ``data`` (bubblewrap copies it into the sandbox)."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, data)
    finally:
        os.close(write_end)
    return read_end


CGROUP_PREFIX = "nbp-sandbox-"
# The groups this process made whose sandbox is still running (the sweep leaves them alone).
_live_cgroups: set[Path] = set()


def _end_cgroup(group: Path, within: float = 2.0) -> bool:
    """Kill every process in ``group`` and remove it: True when it is gone."""
    deadline = time.monotonic() + within
    while True:
        try:
            group.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            pass
        try:
            pids = (group / "cgroup.procs").read_text().split()
        except OSError:
            pids = []
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)  # killed processes leave the group once they are reaped


def _creator_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_cgroups(root: Path) -> int:
    """End the sandbox cgroups under ``root`` whose owner is gone: made by a process that has ended (an
    executor killed with SIGKILL never removes its own, and a sandbox it had just started may outlive
    it), or by this one for a sandbox it has closed. Their processes are killed and the groups removed.
    Each group is named after the process that made it, so a group another live process has just made
    (and is about to join) is never taken from under it. Returns how many were removed."""
    removed = 0
    own = os.getpid()
    for group in root.glob(f"{CGROUP_PREFIX}*-*"):
        creator = group.name[len(CGROUP_PREFIX) :].split("-", 1)[0]
        if not creator.isdigit() or group in _live_cgroups:
            continue
        pid = int(creator)
        if (pid == own or not _creator_alive(pid)) and _end_cgroup(group, within=0.5):
            removed += 1
    return removed


def _pids_cgroup(limit: int) -> Path | None:
    """A new pids cgroup limited to ``limit`` (cgroup v2 or v1), or None where we may not make one."""
    for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/pids")):
        if not (root / "cgroup.procs").is_file() or not os.access(root, os.W_OK):
            continue
        sweep_cgroups(root)
        group = root / f"{CGROUP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:16]}"
        try:
            group.mkdir()
        except OSError:
            continue
        try:
            # A real cgroup has its interface files the moment it is made: a plain folder does not.
            if not (group / "pids.max").is_file():
                raise OSError("not a pids cgroup")
            (group / "pids.max").write_text(str(limit))
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()
            continue
        _live_cgroups.add(group)
        return group
    return None


def prepare(sandbox: Sandbox, argv: Sequence[str]) -> Prepared:
    """The bubblewrap command that runs ``argv`` confined to ``sandbox``."""
    if not USERNAME_PATTERN.fullmatch(sandbox.username):
        raise ValueError(f"not a username: {sandbox.username!r}")
    folder = Path(os.path.realpath(sandbox.folder))
    if not folder.is_dir():
        raise SandboxUnavailable(f"{folder} is not a folder")
    cmd = [
        bubblewrap(),
        "--unshare-user",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "sandbox",
        "--die-with-parent",
        "--new-session",
    ]
    if not sandbox.share_network:
        cmd.append("--unshare-net")
    if sandbox.nested_namespaces:
        cmd += ["--cap-add", "CAP_SYS_ADMIN"]
    for name in SYSTEM_DIRS:
        host = Path("/") / name
        if host.is_symlink():
            cmd += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            cmd += ["--ro-bind", str(host), str(host)]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run", "--dir", "/var/tmp"]
    for name in ETC_FILES:
        host = Path("/etc") / name
        if host.exists():
            cmd += ["--ro-bind", str(host), str(host)]
    for path in _runtime_paths(sandbox.packages):
        cmd += ["--ro-bind", str(path), str(path)]
    fds: list[int] = []
    user = sandbox.username
    for name, data in (
        ("passwd", f"{user}:x:{SANDBOX_UID}:{SANDBOX_UID}::{sandbox.home}:/bin/sh\n"),
        ("group", f"{user}:x:{SANDBOX_UID}:\n"),
    ):
        fds.append(_data_fd(data.encode()))
        cmd += ["--ro-bind-data", str(fds[-1]), f"/etc/{name}"]
    for inside, host in sandbox.read_only.items():
        cmd += ["--ro-bind", str(host), inside]
    cmd += ["--bind", str(folder), sandbox.home, "--chdir", sandbox.cwd or sandbox.home, "--clearenv"]
    for key, value in sandbox_env(sandbox).items():
        cmd += ["--setenv", key, value]

    limits = sandbox.limits
    cgroup = None
    if limits.processes is not None and os.geteuid() == 0:
        # RLIMIT_NPROC does not bind root's processes (even mapped to another uid inside).
        cgroup = _pids_cgroup(limits.processes)
        if cgroup is None:
            for fd in fds:
                os.close(fd)
            raise SandboxUnavailable(
                "the process-count limit cannot be enforced: the executor runs as root and may not "
                "create a pids cgroup (/sys/fs/cgroup); run it as a non-root user, or give it a "
                "writable cgroup"
            )
    prlimit = ["--core=0"]
    if limits.memory_bytes is not None:
        prlimit.append(f"--as={limits.memory_bytes}")
    if limits.cpu_seconds is not None:
        prlimit.append(f"--cpu={limits.cpu_seconds}")
    if limits.processes is not None:
        # Set inside the new user namespace: counted per sandbox, not per host user.
        prlimit.append(f"--nproc={limits.processes}")
    cmd += ["--", PRLIMIT, *prlimit, "--", *argv]
    return Prepared(cmd, tuple(fds), cgroup)


async def spawn(prepared: Prepared, **kwargs: Any) -> asyncio.subprocess.Process:
    """Start a prepared sandbox with asyncio (``kwargs``: stdin/stdout/stderr and the like)."""
    extra: tuple[int, ...] = tuple(kwargs.pop("pass_fds", ()))
    preexec: Callable[[], None] | None = prepared.preexec_fn if prepared.cgroup is not None else None
    try:
        process = await asyncio.create_subprocess_exec(
            *prepared.argv, pass_fds=(*prepared.pass_fds, *extra), preexec_fn=preexec, env={}, **kwargs
        )
    except BaseException:
        prepared.close()
        raise
    prepared.started()
    return process
