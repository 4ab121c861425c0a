"""Fresh kernels in milliseconds: a zygote process imports ipykernel once, then forks one new kernel
process per request. Every run still gets its own, new process (never reused, never shared); what it
saves is the second of CPU an interpreter spends importing IPython and ipykernel on every start.

How it fits Jupyter: the kernel spec's command becomes ``python -m nbp_executor.runners.forkserver kernel
SOCKET -f {connection_file}``, a tiny *stand-in* process that jupyter_client launches and manages as
usual. The stand-in asks the zygote for a kernel (passing its stdin/stdout/stderr, environment, working
directory and the connection file's content), relays signals to it (interrupt) over the same connection,
and exits with the kernel's exit status (kernel death is seen as usual).

Per request the zygote forks a *keeper*, which owns the connection and forks the kernel: it relays the
stand-in's signals, reports the kernel's end, and kills the kernel the moment the stand-in is gone.

Confined (``serve --confine``, the ``sandbox`` runner): the zygote runs inside one user's sandbox
(``nbp_common.sandbox``: that user's folder and the runtime, nothing else), holding CAP_SYS_ADMIN in the
sandbox's own user namespace only. The keeper makes a new PID namespace per run, whose PID 1 (a
small init: relays signals, reaps orphans) forks the kernel and ends with it, taking everything the run
started with it (a fork bomb's children included); the kernel sets its CPU-time limit, drops every
capability (checked, or it exits) and only then runs a line of user code.

This file is also run as a script inside the sandbox (bound read-only at ``/run/nbp/forkserver.py``):
only the stdlib is imported, and nothing of the executor.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
from typing import Any

_HEADER = struct.Struct("!I")


def _recv_exact(conn: socket.socket, size: int, first: bytes = b"") -> bytes:
    data = first
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return data


def _readline(conn: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            raise ConnectionError("zygote closed the connection")
        data += chunk
    return data.decode().strip()


# --- The zygote -------------------------------------------------------------------------------------

CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
CPU_LIMIT_SIGNAL = signal.SIGXCPU  # how a kernel ended by its CPU-time limit is reported


def serve(server: socket.socket, confine: bool, cpu_seconds: int | None) -> None:
    """Import the kernel's code, then fork a keeper (and its kernel) per connection until the parent
    goes away."""
    import ipykernel.kernelapp  # noqa: F401  (the expensive imports, once)

    _preload()
    if threading.active_count() > 1:  # forking a process with threads is not safe: refuse to serve
        print("threads running after the imports; not serving", flush=True)
        os._exit(3)
    parent = os.getppid()
    server.listen(64)
    keepers = 0
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select([server], [], [], 0.05)
        while keepers:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            keepers -= 1
        if os.getppid() != parent:  # the executor (or the sandbox) is gone: so are we
            os._exit(0)
        if server in readable:
            conn, _ = server.accept()
            try:
                _fork_keeper(server, conn, confine, cpu_seconds)
                keepers += 1
            except Exception as exc:
                with contextlib.suppress(OSError):
                    conn.sendall(f"error {type(exc).__name__}: {exc}\n".encode())
            conn.close()


def _preload() -> None:
    """Import what a kernel imports while it starts (debugger, shell, history...): learnt from a
    throw-away child that starts a kernel application and reports its ``sys.modules``."""
    import importlib
    import tempfile

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            devnull = os.open(os.devnull, os.O_RDWR)
            for target in (0, 1, 2):
                os.dup2(devnull, target)
            from ipykernel.kernelapp import IPKernelApp

            connection = os.path.join(tempfile.mkdtemp(prefix="nbp-probe-"), "kernel.json")
            IPKernelApp.instance().initialize(["-f", connection])  # type: ignore[no-untyped-call]
            os.write(write_end, "\n".join(sorted(sys.modules)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 1 << 16):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    for name in b"".join(chunks).decode().split("\n"):
        if name and name not in sys.modules and name != "__main__":
            with contextlib.suppress(BaseException):
                importlib.import_module(name)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _fork_keeper(server: socket.socket, conn: socket.socket, confine: bool, cpu_seconds: int | None) -> None:
    first, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    size = _HEADER.unpack(_recv_exact(conn, _HEADER.size, first[: _HEADER.size]))[0]
    body = _recv_exact(conn, size, first[_HEADER.size :])
    request: dict[str, Any] = json.loads(body)
    if os.fork():
        for fd in fds:
            os.close(fd)
        return
    code = 1
    try:  # the keeper
        server.close()
        if confine and _libc().unshare(CLONE_NEWPID) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWPID) failed")
        child = os.fork()  # confined: the run's PID 1, which forks the kernel; else the kernel
        if child == 0:
            conn.close()
            if not confine:
                _become_kernel(request, fds, confine, cpu_seconds)  # never returns
            kernel = os.fork()
            if kernel == 0:
                _become_kernel(request, fds, confine, cpu_seconds)
            _run_init(kernel, fds)  # never returns
        for fd in fds:
            os.close(fd)
        conn.sendall(f"pid {child}\n".encode())
        code = _keep(conn, child, cpu_seconds, through_init=confine)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            conn.sendall(f"error {type(exc).__name__}: {exc}\n".encode())
    os._exit(code)


RELAYED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def _run_init(kernel: int, fds: list[int]) -> None:
    """PID 1 of a run's namespace: relay signals to the kernel, reap orphans, end with the kernel
    (and with it everything the run started: the kernel tears the namespace down)."""
    code = 1
    try:
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        for fd in fds:
            os.close(fd)

        def relay(signum: int, _frame: Any) -> None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(kernel, signum)

        for sig in RELAYED:
            signal.signal(sig, relay)
        _drop_capabilities()
        while True:
            pid, status = os.wait()
            if pid == kernel:
                break
        # A death by signal is told as the shell does (128 + signal): the keeper turns it back.
        code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    except BaseException:
        import traceback

        traceback.print_exc()
    os._exit(code)


def _keep(conn: socket.socket, kernel: int, cpu_seconds: int | None, through_init: bool) -> int:
    """Relay the stand-in's signals to the kernel (or the run's PID 1) until it ends; kill it if the
    stand-in goes."""
    buffer = b""
    while True:
        pid, status, usage = os.wait4(kernel, os.WNOHANG)
        if pid:
            break
        readable, _, _ = select.select([conn], [], [], 0.05)
        if not readable:
            continue
        try:
            chunk = conn.recv(256)
        except OSError:
            chunk = b""
        if not chunk:  # the stand-in is gone (killed): so is the kernel
            with contextlib.suppress(ProcessLookupError):
                os.kill(kernel, signal.SIGKILL)
            os.waitpid(kernel, 0)
            return 0
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.startswith(b"signal "):
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(kernel, int(line.split()[1]))
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    if through_init and code > 128:  # the run's PID 1 tells a kernel's death by signal as 128 + signal
        code = 128 - code
    used = usage.ru_utime + usage.ru_stime  # the run's PID 1's includes the kernel's (it waited)
    # (rusage samples CPU time by ticks: it reads up to ~10% short of what the limit counted)
    if code == -signal.SIGKILL and cpu_seconds is not None and used >= cpu_seconds * 0.75:
        code = -CPU_LIMIT_SIGNAL  # the hard CPU-time limit kills with SIGKILL: say which it was
    with contextlib.suppress(OSError):
        conn.sendall(f"exit {code}\n".encode())
    return 0


def _drop_capabilities() -> None:
    """No capability left in any set (user code must not undo the sandbox), or no kernel at all."""

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [
            ("effective", ctypes.c_uint32),
            ("permitted", ctypes.c_uint32),
            ("inheritable", ctypes.c_uint32),
        ]

    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    if _libc().capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("CapInh:", "CapPrm:", "CapEff:", "CapAmb:")) and int(line.split()[1], 16):
                raise OSError(f"capabilities left after dropping them: {line.strip()}")


def _become_kernel(request: dict[str, Any], fds: list[int], confine: bool, cpu_seconds: int | None) -> None:
    code = 1
    try:
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the keeper gone: the kernel too
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        argv = list(request["argv"])
        if confine:
            import resource

            if cpu_seconds is not None:
                resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
            _drop_capabilities()
            os.setsid()
            # The connection file jupyter_client wrote is outside: its content comes in the request.
            path = f"/tmp/nbp-kernel-{os.getppid()}-{os.urandom(4).hex()}.json"
            with open(path, "w") as handle:
                handle.write(request["connection"])
            argv = ["-f", path, *_without_connection_file(argv)]
        if confine:  # the stand-in's folder is outside; the kernel starts in the owner's home
            # The zygote's environment is the sandbox's allow-list; of the request's only Jupyter's own.
            os.environ.update({k: v for k, v in request["env"].items() if k.startswith("JPY_")})
        else:
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
        if "random" in sys.modules:  # a fork copies the generator's state: each kernel gets its own
            sys.modules["random"].seed()
        sys.argv = ["ipykernel_launcher", *argv]
        from ipykernel.kernelapp import launch_new_instance

        launch_new_instance()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    os._exit(code)


def _without_connection_file(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "-f":
            skip = True
        elif not arg.startswith("--f="):
            out.append(arg)
    return out


def _connection_file(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "-f" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--f="):
            return arg[4:]
    return None


# --- The stand-in (what jupyter_client launches) -----------------------------------------------------


def stand_in(path: str, argv: list[str]) -> None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    connection_file = _connection_file(argv)
    connection = ""
    if connection_file is not None:
        with open(connection_file) as handle:
            connection = handle.read()
    body = json.dumps(
        {"argv": argv, "env": dict(os.environ), "cwd": os.getcwd(), "connection": connection}
    ).encode()
    socket.send_fds(conn, [_HEADER.pack(len(body)) + body], [0, 1, 2])
    answer = _readline(conn)
    if not answer.startswith("pid "):
        print(f"nbp forkserver: {answer}", file=sys.stderr)
        sys.exit(1)

    def relay(signum: int, _frame: Any) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(f"signal {signum}\n".encode())

    for sig in RELAYED:
        signal.signal(sig, relay)
    try:
        answer = _readline(conn)
    except ConnectionError:
        sys.exit(1)
    code = int(answer.split()[1]) if answer.startswith("exit ") else 1
    if code < 0:  # mirror a death by signal (SIGKILL from the OOM killer, say)
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU would dump a core
        with contextlib.suppress(OSError, ValueError):  # SIGKILL has no handler to reset
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


def main() -> None:
    if sys.argv[1:2] == ["kernel"]:  # the stand-in: kernel SOCKET ARGV... (as fast as possible)
        stand_in(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(prog="forkserver")
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser("serve")
    where = serving.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", help="listen on this Unix socket path")
    where.add_argument("--fd", type=int, help="accept on this inherited listening socket")
    serving.add_argument("--confine", action="store_true", help="kernels in their own PID namespace")
    serving.add_argument("--cpu-seconds", type=int, default=None)
    args = parser.parse_args()
    if args.fd is not None:
        server = socket.socket(fileno=args.fd)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(args.socket)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(args.socket)
    serve(server, args.confine, args.cpu_seconds)


if __name__ == "__main__":
    main()
