"""Fresh kernels in milliseconds: a zygote process imports ipykernel once, then forks one new kernel
process per request. Every run still gets its own, new process (never reused, never shared); what it
saves is the second of CPU an interpreter spends importing IPython and ipykernel on every start.

How it fits Jupyter: the kernel spec's command becomes ``python -m nbp_executor.forkserver kernel
SOCKET -f {connection_file}``, a tiny *stand-in* process that jupyter_client launches and manages as
usual. The stand-in asks the zygote for a kernel (passing its stdin/stdout/stderr, environment and
working directory), relays signals to it (interrupt), and exits with the kernel's exit status (kernel
death is seen as usual). If the stand-in is killed, the kernel notices within 0.2 s and exits.

Only the stdlib is imported at module level: the stand-in must start fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
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


def serve(path: str) -> None:
    """Import the kernel's code, then fork a kernel per connection until the parent goes away."""
    import ipykernel.kernelapp  # noqa: F401  (the expensive imports, once)

    _preload()
    if threading.active_count() > 1:  # forking a process with threads is not safe: refuse to serve
        print("threads running after the imports; not serving", flush=True)
        os._exit(3)
    parent = os.getppid()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    children: dict[int, socket.socket] = {}
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select([server], [], [], 0.05)
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = children.pop(pid, None)
            if conn is not None:
                code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                with contextlib.suppress(OSError):
                    conn.sendall(f"exit {code}\n".encode())
                conn.close()
        if os.getppid() != parent:  # the executor is gone: so are we (kernels follow their stand-ins)
            os._exit(0)
        if server in readable:
            conn, _ = server.accept()
            try:
                pid = _fork_kernel(server, conn, children)
            except Exception as exc:
                with contextlib.suppress(OSError):
                    conn.sendall(f"error {type(exc).__name__}: {exc}\n".encode())
                conn.close()
                continue
            children[pid] = conn


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


def _fork_kernel(server: socket.socket, conn: socket.socket, children: dict[int, socket.socket]) -> int:
    first, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    size = _HEADER.unpack(_recv_exact(conn, _HEADER.size, first[: _HEADER.size]))[0]
    body = _recv_exact(conn, size, first[_HEADER.size :])
    request: dict[str, Any] = json.loads(body)
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        conn.sendall(f"pid {pid}\n".encode())
        return pid
    try:  # the child: become the kernel
        server.close()
        for other in children.values():
            other.close()
        conn.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
        if "random" in sys.modules:  # a fork copies the generator's state: each kernel gets its own
            sys.modules["random"].seed()
        _watch_stand_in(int(request["stand_in"]))
        sys.argv = ["ipykernel_launcher", *request["argv"]]
        if request["env"].get("JPY_PARENT_PID", "").isdigit():
            # The trait's default was read from the zygote's environment, which has none.
            sys.argv.append(f"--IPKernelApp.parent_handle={request['env']['JPY_PARENT_PID']}")
        from ipykernel.kernelapp import launch_new_instance

        launch_new_instance()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    os._exit(code)


def _watch_stand_in(pid: int) -> None:
    """The stand-in is what jupyter_client kills: when it is gone, the kernel goes too."""

    def watch() -> None:
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            time.sleep(0.2)

    threading.Thread(target=watch, name="nbp-stand-in-watch", daemon=True).start()


# --- The stand-in (what jupyter_client launches) -----------------------------------------------------


def stand_in(path: str, argv: list[str]) -> None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    body = json.dumps(
        {"argv": argv, "env": dict(os.environ), "cwd": os.getcwd(), "stand_in": os.getpid()}
    ).encode()
    socket.send_fds(conn, [_HEADER.pack(len(body)) + body], [0, 1, 2])
    answer = _readline(conn)
    if not answer.startswith("pid "):
        print(f"nbp forkserver: {answer}", file=sys.stderr)
        sys.exit(1)
    kernel = int(answer.split()[1])

    def relay(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(kernel, signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, relay)
    try:
        answer = _readline(conn)
    except ConnectionError:
        sys.exit(1)
    code = int(answer.split()[1]) if answer.startswith("exit ") else 1
    if code < 0:  # mirror a death by signal (SIGKILL from the OOM killer, say)
        with contextlib.suppress(OSError, ValueError):  # SIGKILL has no handler to reset
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


def main() -> None:
    command, path, *rest = sys.argv[1:]
    if command == "serve":
        serve(path)
    elif command == "kernel":
        stand_in(path, rest)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
