"""``make dev`` (``nbp-platform``): the whole platform on this machine, and nothing left of it afterwards.

Starts, in order: the embedded PostgreSQL (in this process), Keycloak (``scripts/keycloak.py``), the API
(``nbp-dev``), JupyterHub (``nbp-hub``) and Superset (the command ``superset-auth/`` provides), waits for
each to answer, prints the URLs and the development users, and then watches them. Ctrl-C, SIGTERM or
SIGHUP — or any part exiting — stops everything in reverse order.

Nothing outlives it: every child runs in its own process group (a terminal's Ctrl-C reaches only this
process, which stops them in order) with the kernel's parent-death signal set (SIGTERM if this process is
killed outright); this process is a child subreaper, so whatever a child leaves behind (a daemonised
PostgreSQL, Keycloak's java, a single-user server) is re-parented here and ended by a final sweep. Its
pid and its children's are kept in ``.nbp/platform/``; a run that died without stopping is cleaned up
by the next one. Keycloak is stopped only when this run started it -- or an earlier run that was killed
before it could stop it (Keycloak outlives a SIGKILL: it runs in a session of its own).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import http.client
import importlib.util
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import IO

import psutil

from nbp_platform.postgres import DataDirInUse, EmbeddedPostgres

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
DEV_USERS = (
    ("alice", "data-scientists: notebooks, runs"),
    ("bob", "data-scientists"),
    ("carol", "analysts: reads runs, Superset"),
    ("dana", "admins"),
    ("erin", "no group: refused everywhere"),
)


class Shutdown(Exception):
    """A stop signal arrived, or a part of the platform exited."""


def say(message: str) -> None:
    print(f"nbp-platform: {message}", file=sys.stderr, flush=True)


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _child_setup() -> None:
    """In each child before exec: its own process group, and SIGTERM when the supervisor dies."""
    os.setsid()
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 (a proxy's error page for a backend not up yet does not count)."""
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return bool(response.status == 200)
    except (OSError, ValueError, http.client.HTTPException):  # HTTPError and URLError are OSErrors
        return False


@dataclass
class Child:
    """A long-running part of the platform: a command that serves ``url`` once ``ready_url`` answers."""

    name: str
    command: list[str]
    env: dict[str, str]
    url: str
    ready_url: str
    log: Path
    process: subprocess.Popen[bytes] | None = None
    pumps: list[threading.Thread] = field(default_factory=list)


class Supervisor:
    def __init__(self, repo: Path, state: Path, ports: dict[str, int], superset_command: list[str]) -> None:
        self.repo = repo
        self.state = state
        self.ports = ports
        self.superset_command = superset_command
        self.children: list[Child] = []
        self.postgres: EmbeddedPostgres | None = None
        self.keycloak_started = False
        self.keycloak: ModuleType = _load_keycloak_script(repo)
        self.run_dir = state / "platform"
        self.bin = Path(sys.executable).parent

    # --- lifecycle ---------------------------------------------------------------------------------

    def run(self) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        with self._signals_raise_shutdown():
            try:
                self._reap_previous_run()
                self._check_ports()
                self._start_all()
                self._print_summary()
                return self._watch()
            except Shutdown as stop:
                say(f"{stop}: stopping")
                return 0
            except (DataDirInUse, RuntimeError) as error:
                say(f"error: {error}")
                return 1
            finally:
                with self._signals_ignored():
                    self._stop_all()

    @contextlib.contextmanager
    def _signals_raise_shutdown(self) -> Iterator[None]:
        def handler(signum: int, _frame: FrameType | None) -> None:
            raise Shutdown(signal.Signals(signum).name)

        previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    @contextlib.contextmanager
    def _signals_ignored(self) -> Iterator[None]:
        def handler(signum: int, _frame: FrameType | None) -> None:
            say(f"{signal.Signals(signum).name} again: still stopping, please wait")

        previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def _check_ports(self) -> None:
        for name, port in self.ports.items():
            if name == "keycloak":
                continue  # a Keycloak already running for this checkout is reused
            if not port_free(port):
                variable = f"NBP_{name.upper()}_PORT"
                raise RuntimeError(
                    f"port {port} ({name}) is taken; free it or choose another with {variable}"
                )

    def _start_all(self) -> None:
        say(f"starting the embedded PostgreSQL ({self.state / 'postgres'})")
        self.postgres = EmbeddedPostgres(self.state / "postgres")
        self._start_keycloak()
        base = {key: value for key, value in os.environ.items() if not key.startswith("NBP_")}
        base["NBP_LOG_JSON"] = os.environ.get("NBP_LOG_JSON", "false")
        self._start(self._api(base))
        self._start(self._hub(base))
        if self.superset_command:
            self._start(self._superset(base), timeout=1800)  # a first start installs Superset

    def _url(self, part: str) -> str:
        return f"http://127.0.0.1:{self.ports[part]}"

    def _api(self, base: dict[str, str]) -> Child:
        assert self.postgres is not None
        identity = self.keycloak.env_settings()
        env = {
            **base,
            **{k: v for k, v in identity.items() if k.startswith(("NBP_AUTH", "NBP_OIDC", "NBP_SERVICE"))},
            "NBP_DATABASE_URL": self.postgres.database_url("notebook_manager").render_as_string(
                hide_password=False
            ),
            "NBP_WORKSPACE": str(self.state / "workspace"),
        }
        command = [str(self.bin / "nbp-dev"), "--port", str(self.ports["api"])]
        url = self._url("api")
        return Child("api", command, env, url, f"{url}/ready", self.run_dir / "api.log")

    def _hub(self, base: dict[str, str]) -> Child:
        assert self.postgres is not None
        database = self.postgres.database_url("jupyterhub", driver="postgresql+psycopg2")
        env = {
            **base,
            "NBP_HUB_PORT": str(self.ports["hub"]),
            "NBP_HUB_API_PORT": str(self.ports["hub_api"]),
            "NBP_HUB_PROXY_API_PORT": str(self.ports["hub_proxy_api"]),
            "NBP_HUB_DATABASE_URL": database.render_as_string(hide_password=False),
            "NBP_HUB_STATE_DIR": str(self.state / "hub"),
            "NBP_WORKSPACE": str(self.state / "workspace"),
            "NBP_API_URL": self._url("api"),
            "NBP_OIDC_ISSUER": self.keycloak.ISSUER,
            "NBP_JUPYTERHUB_CLIENT_SECRET": self.keycloak.settings()["NBP_JUPYTERHUB_CLIENT_SECRET"],
            "NBP_CHP_PATH": str(self.repo / ".cache/chp/node_modules/.bin/configurable-http-proxy"),
        }
        url = self._url("hub")
        return Child(
            "jupyterhub",
            [str(self.bin / "nbp-hub")],
            env,
            url,
            f"{url}/hub/health",
            self.run_dir / "jupyterhub.log",
        )

    def _superset(self, base: dict[str, str]) -> Child:
        """Superset through the start command ``superset-auth/`` provides (its own environment)."""
        assert self.postgres is not None
        env = {
            **base,
            "NBP_SUPERSET_PORT": str(self.ports["superset"]),
            "NBP_STATE_DIR": str(self.state),  # its secrets and home, not the checkout's .nbp
            "NBP_OIDC_ISSUER": self.keycloak.ISSUER,
            "NBP_SUPERSET_CLIENT_SECRET": self.keycloak.settings()["NBP_SUPERSET_CLIENT_SECRET"],
            "NBP_DATABASE_URL": self.postgres.database_url("notebook_manager").render_as_string(
                hide_password=False
            ),
        }
        url = self._url("superset")
        return Child(
            "superset", self.superset_command, env, url, f"{url}/health", self.run_dir / "superset.log"
        )

    def _start_keycloak(self) -> None:
        # Only this state folder's Keycloak is reused (its secrets are the ones the parts are given);
        # another process on the port makes `keycloak.py start` fail, saying so.
        if self.keycloak.read_state() is not None and self.keycloak.answers():
            if self.keycloak_started:
                say(f"reusing the Keycloak an earlier run started and left at {self.keycloak.ISSUER}")
            else:
                say(f"using the Keycloak already running at {self.keycloak.ISSUER}")
            self._record_children()
            return
        say("starting Keycloak (a first start fetches and unpacks the server: a few minutes)")
        self.keycloak_started = True
        self._record_children()  # before it starts: a run killed meanwhile leaves it to the next one
        command = [sys.executable, str(self.repo / "scripts" / "keycloak.py"), "start"]
        starter = subprocess.Popen(command, cwd=self.repo, preexec_fn=_child_setup)  # its output: ours
        if starter.wait() != 0:
            raise RuntimeError(
                "Keycloak did not start (see above; its log: python3 scripts/keycloak.py logs)"
            )

    def _start(self, child: Child, timeout: float = 300) -> None:
        say(f"starting {child.name} (log: {child.log})")
        child.log.parent.mkdir(parents=True, exist_ok=True)
        child.process = subprocess.Popen(
            child.command,
            cwd=self.repo,
            env=child.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_child_setup,
        )
        self.children.append(child)
        self._record_children()
        assert child.process.stdout is not None
        pump = threading.Thread(target=_pump, args=(child.name, child.process.stdout, child.log), daemon=True)
        pump.start()
        child.pumps.append(pump)
        deadline = time.monotonic() + timeout
        last_note = time.monotonic()
        while not answers(child.ready_url):
            if child.process.poll() is not None:
                raise RuntimeError(
                    f"{child.name} exited with {child.process.returncode} during start; see {child.log}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{child.name} did not answer {child.ready_url} within {timeout:.0f} s")
            if time.monotonic() - last_note > 30:
                say(f"still waiting for {child.name} ({child.ready_url})")
                last_note = time.monotonic()
            time.sleep(0.5)
        say(f"{child.name} is up at {child.url}")

    def _print_summary(self) -> None:
        password = self.keycloak.settings()["NBP_DEV_USER_PASSWORD"]
        lines = [
            "",
            "notebook-platform is up (Ctrl-C stops everything):",
            f"  JupyterHub  http://127.0.0.1:{self.ports['hub']}/",
            f"  API         http://127.0.0.1:{self.ports['api']}/docs",
            f"  Superset    http://127.0.0.1:{self.ports['superset']}/"
            if self.superset_command
            else "  Superset    (not started: `nbp-superset` is not installed in this checkout)",
            f"  Keycloak    {self.keycloak.BASE_URL}/realms/{self.keycloak.REALM}/account/",
            f"development users (password {password}):",
            *(f"  {name:<6} {role}" for name, role in DEV_USERS),
            "",
        ]
        print("\n".join(lines), flush=True)

    def _watch(self) -> int:
        while True:
            for child in self.children:
                assert child.process is not None
                if child.process.poll() is not None:
                    say(f"{child.name} exited with {child.process.returncode}; stopping the platform")
                    return 1
            self._reap_orphans()
            time.sleep(0.5)

    # --- stopping ------------------------------------------------------------------------------------

    def _stop_all(self) -> None:
        for child in reversed(self.children):
            if child.process is not None and child.process.poll() is None:
                say(f"stopping {child.name}")
                _end_group(child.process.pid, grace=30)
            for pump in child.pumps:
                pump.join(timeout=5)
        if self.keycloak_started:
            say("stopping Keycloak")
            subprocess.run(
                [sys.executable, str(self.repo / "scripts" / "keycloak.py"), "stop"],
                cwd=self.repo,
                check=False,
            )
        if self.postgres is not None:
            say("stopping the embedded PostgreSQL")
            self.postgres.stop()
        self._sweep()
        (self.run_dir / "children.json").unlink(missing_ok=True)
        say("stopped")

    def _reap_orphans(self) -> None:
        """Collect exited processes re-parented to this subreaper (not the children Popen waits for)."""
        ours = {child.process.pid for child in self.children if child.process is not None}
        for proc in psutil.Process().children():
            if proc.pid in ours:
                continue
            with contextlib.suppress(psutil.Error, ChildProcessError):
                if proc.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(proc.pid, os.WNOHANG)

    def _sweep(self) -> None:
        """End whatever is still below this process (descendants left by a child) and reap it."""
        left = [p for p in psutil.Process().children(recursive=True) if _alive(p)]
        if left:
            say(f"ending {len(left)} leftover process(es): {', '.join(_describe(p) for p in left)}")
            for proc in left:
                with contextlib.suppress(psutil.Error):
                    proc.terminate()
            _, still = psutil.wait_procs(left, timeout=10)
            for proc in still:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            psutil.wait_procs(still, timeout=5)
        self._reap_orphans()

    # --- the previous run ------------------------------------------------------------------------------

    def _record_children(self) -> None:
        records = []
        for child in self.children:
            if child.process is not None:
                with contextlib.suppress(psutil.Error):
                    records.append(
                        {"pid": child.process.pid, "started": psutil.Process(child.process.pid).create_time()}
                    )
        record = {"supervisor": os.getpid(), "children": records, "keycloak_started": self.keycloak_started}
        (self.run_dir / "children.json").write_text(json.dumps(record))

    def _reap_previous_run(self) -> None:
        """A run that died without stopping (SIGKILL) may have left its children's groups running."""
        record = self.run_dir / "children.json"
        if not record.exists():
            return
        with contextlib.suppress(ValueError, OSError):
            previous = json.loads(record.read_text())
            if psutil.pid_exists(previous["supervisor"]) and previous["supervisor"] != os.getpid():
                with contextlib.suppress(psutil.Error):
                    if "nbp-platform" in " ".join(psutil.Process(previous["supervisor"]).cmdline()):
                        pid = previous["supervisor"]
                        raise RuntimeError(
                            f"another `make dev` of this checkout runs (pid {pid}); stop it first"
                        )
            for entry in previous["children"]:
                with contextlib.suppress(psutil.Error):
                    proc = psutil.Process(entry["pid"])
                    if abs(proc.create_time() - entry["started"]) < 1:
                        say(f"ending {_describe(proc)} left by an earlier run")
                        _end_group(proc.pid, grace=20)
            # A Keycloak the earlier run started is this run's to stop (it is reused if it still runs).
            self.keycloak_started = bool(previous.get("keycloak_started"))
        record.unlink(missing_ok=True)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.pid} ({proc.name()})"
    except psutil.Error:
        return str(proc.pid)


def _end_group(pgid: int, grace: float) -> None:
    """SIGTERM the process group, wait up to ``grace`` seconds for its leader, then SIGKILL the group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pgid, os.WNOHANG)
        except ChildProcessError:  # not our child (an earlier run's): poll for it instead
            finished = 0 if psutil.pid_exists(pgid) and _alive(psutil.Process(pgid)) else pgid
        if finished == pgid:
            break
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _pump(name: str, stream: IO[bytes], log: Path) -> None:
    """Copy a child's output to its log and, prefixed with its name, to this terminal."""
    with log.open("ab") as out:
        for line in iter(stream.readline, b""):
            out.write(line)
            out.flush()
            sys.stdout.write(f"[{name}] {line.decode(errors='replace')}")
            sys.stdout.flush()


def _load_keycloak_script(repo: Path) -> ModuleType:
    """``scripts/keycloak.py`` as a module: its settings, URLs and readiness check (no virtualenv there)."""
    spec = importlib.util.spec_from_file_location("nbp_keycloak_script", repo / "scripts" / "keycloak.py")
    if spec is None or spec.loader is None:
        raise RuntimeError(f"{repo / 'scripts' / 'keycloak.py'} not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _port(variable: str, default: int) -> int:
    value = os.environ.get(variable, str(default))
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"error: {variable}={value!r} is not a port number") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="nbp-platform", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="the checkout (default: here)")
    args = parser.parse_args(argv)
    repo: Path = args.repo.resolve()
    state = Path(os.environ.get("NBP_STATE_DIR", str(repo / ".nbp"))).resolve()
    ports = {
        "api": _port("NBP_API_PORT", 8002),
        "hub": _port("NBP_HUB_PORT", 8000),
        "hub_api": _port("NBP_HUB_API_PORT", 8081),
        "hub_proxy_api": _port("NBP_HUB_PROXY_API_PORT", 8001),
        "superset": _port("NBP_SUPERSET_PORT", 8088),
        "keycloak": _port("NBP_KEYCLOAK_PORT", 8180),
    }
    superset = _superset_command()
    supervisor = Supervisor(repo, state, ports, superset)
    sys.exit(supervisor.run())


def _superset_command() -> list[str]:
    """Superset's start command (installs it once into its own environment, migrates, serves): the
    workspace's ``nbp-superset serve`` (``superset-auth/``), or ``NBP_SUPERSET_COMMAND``."""
    if "NBP_SUPERSET_COMMAND" in os.environ:
        return shlex.split(os.environ["NBP_SUPERSET_COMMAND"])
    starter = Path(sys.executable).with_name("nbp-superset")
    return [str(starter), "serve"] if starter.exists() else []
