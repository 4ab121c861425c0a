"""``make dev``: from a clean state it starts every part itself -- Keycloak too (unpacked, its realm
imported, on a port of its own), the embedded PostgreSQL, the API, JupyterHub and Superset --, every
URL answers, and nothing of it is left after Ctrl-C, after SIGTERM, nor, after it was killed outright,
once the next ``make dev`` stops.

The module's tests share one state folder (``NBP_STATE_DIR``): the first starts from nothing, the others
restart on what it left, as a developer's second ``make dev`` does. Each holds on its own too.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from nbp_platform.postgres import postmasters

from tests.support.common import free_port
from tests.support.keycloak import repo_root

UP = "notebook-platform is up"
REALM = "notebook-platform"
START_TIMEOUT = 1500  # a first start: Keycloak unpacked and its realm imported, Superset initialised


class Platform:
    def __init__(self, state: Path, keycloak_port: int, log: Path, *, via_make: bool, superset: bool) -> None:
        self.state = state
        self.log = log
        self.ports = {name: free_port() for name in ("API", "HUB", "HUB_API", "HUB_PROXY_API", "SUPERSET")}
        self.ports["KEYCLOAK"] = keycloak_port
        # The caller's NBP_* settings stay out, but for how long a slow machine may take to start Keycloak.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("NBP_") or k == "NBP_KEYCLOAK_START_TIMEOUT"
        }
        env.update({f"NBP_{name}_PORT": str(port) for name, port in self.ports.items()})
        env["NBP_STATE_DIR"] = str(state)
        env.setdefault("NBP_KEYCLOAK_START_TIMEOUT", "900")  # a first start on a busy two-core machine
        if not superset:
            env["NBP_SUPERSET_COMMAND"] = ""
        repo = repo_root()
        command = (
            ["make", "--no-print-directory", "-C", str(repo), "dev"]
            if via_make
            else [str(repo / ".venv" / "bin" / "nbp-platform"), "--repo", str(repo)]
        )
        with log.open("wb") as out:
            # Its own process group, as a terminal's foreground job: Ctrl-C goes to the whole group.
            self.process = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while UP not in self.output():
            assert self.process.poll() is None, f"make dev exited:\n{self.output()[-6000:]}"
            assert time.monotonic() < deadline, f"make dev did not come up:\n{self.output()[-6000:]}"
            time.sleep(1)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def issuer(self) -> str:
        return f"{self.url('KEYCLOAK')}/realms/{REALM}"

    def processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def stop(self, sig: signal.Signals, *, group: bool) -> None:
        if group:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        self.process.wait(timeout=300)


@pytest.fixture(scope="module")
def state() -> Iterator[Path]:
    """The platform's state folder, outside pytest's private tmp (PostgreSQL runs as its own user)."""
    folder = Path(tempfile.mkdtemp(prefix="nbp-platform-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def port_outside_the_ephemeral_range() -> int:
    """A free port below the kernel's ephemeral range (Linux: 32768-60999), which ``bind(0)`` never hands
    out: Keycloak listens minutes after the port is chosen, and meanwhile a kernel's ZeroMQ socket or
    another test's server, given ports by ``bind(0)``, could take one of that range."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.sample(range(20000, min(low, 32768)), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise AssertionError("no free port between 20000 and the ephemeral range")


@pytest.fixture
def keycloak_port() -> int:
    """The Keycloak of this state folder: its own port, not the test session's Keycloak."""
    return port_outside_the_ephemeral_range()


def left_running(processes: list[psutil.Process], state: Path) -> list[str]:
    """What is still alive of ``processes``, and any process working on ``state`` (Keycloak's java runs
    from there, PostgreSQL on its data folder), wherever it was re-parented."""
    alive = {}
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive[proc.pid] = " ".join(proc.cmdline())[:160]
        except psutil.NoSuchProcess:
            continue
    for proc in psutil.process_iter(["cmdline", "status"]):
        command = " ".join(proc.info["cmdline"] or [])
        if str(state) in command and proc.info["status"] != psutil.STATUS_ZOMBIE:
            alive[proc.pid] = command[:160]
    return [f"{pid} {command}" for pid, command in sorted(alive.items())]


def keycloak_processes(state: Path) -> list[psutil.Process]:
    """Keycloak's java (and kc.sh), which run from the state folder's keycloak/."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and str(state / "keycloak") in " ".join(
            proc.info["cmdline"] or []
        ):
            found.append(proc)
    return found


def assert_every_part_answers(platform: Platform, *, superset: bool) -> None:
    output = platform.output()
    parts = ["API", "HUB", "KEYCLOAK"] + (["SUPERSET"] if superset else [])
    for name in parts:
        assert platform.url(name) in output, f"the {name} URL is printed"
    assert all(user in output for user in ("alice", "bob", "carol", "dana", "erin")), "dev users printed"
    assert httpx.get(f"{platform.url('API')}/ready", timeout=30).json()["status"] == "ready"
    # The API verifies Keycloak's tokens: make dev is the platform as deployed, not NBP_AUTH=none.
    assert httpx.get(f"{platform.url('API')}/db/notebooks", timeout=30).status_code == 401
    assert httpx.get(f"{platform.url('HUB')}/hub/health", timeout=30).status_code == 200
    login = httpx.get(f"{platform.url('HUB')}/hub/login", timeout=30)
    assert login.status_code == 200
    assert "Keycloak" in login.text, "the hub signs in with Keycloak"
    discovery = httpx.get(f"{platform.issuer}/.well-known/openid-configuration", timeout=30)
    assert discovery.status_code == 200
    assert discovery.json()["issuer"] == platform.issuer
    if superset:
        assert httpx.get(f"{platform.url('SUPERSET')}/health", timeout=30).status_code == 200
        assert (platform.state / "superset" / "secrets.env").exists(), "Superset's state is NBP_STATE_DIR's"
    assert postmasters(platform.state / "postgres"), "the embedded PostgreSQL runs"


@pytest.mark.timeout(2400)
def test_make_dev_from_a_clean_state_starts_every_part_and_ctrl_c_leaves_nothing(
    state: Path, keycloak_port: int, tmp_path: Path
) -> None:
    assert list(state.iterdir()) == [], "nothing of an earlier make dev: no Keycloak, no database"
    platform = Platform(state, keycloak_port, tmp_path / "dev.log", via_make=True, superset=True)
    processes = platform.processes()
    try:
        output = platform.output()
        # A first start says what it does while it takes long: Keycloak unpacked and started, each part.
        assert "starting Keycloak (a first start" in output
        assert "unpacking keycloak-quarkus-dist-" in output
        assert f"up at {platform.issuer}" in output
        for part in ("api", "jupyterhub", "superset"):
            assert f"{part} is up at" in output
        assert_every_part_answers(platform, superset=True)
    finally:
        platform.stop(signal.SIGINT, group=True)
    time.sleep(1)
    assert left_running(processes, state) == [], platform.output()[-4000:]
    assert postmasters(state / "postgres") == []
    assert "stopping Keycloak" in platform.output()


@pytest.mark.timeout(2400)
def test_sigterm_to_make_dev_leaves_nothing(state: Path, keycloak_port: int, tmp_path: Path) -> None:
    # Superset's start and stop are the first test's (CI time: it is the slowest part to start).
    platform = Platform(state, keycloak_port, tmp_path / "dev.log", via_make=True, superset=False)
    processes = platform.processes()
    try:
        assert_every_part_answers(platform, superset=False)
    finally:
        platform.stop(signal.SIGTERM, group=False)  # to make alone, as a service manager sends it
    time.sleep(1)
    assert left_running(processes, state) == [], platform.output()[-4000:]
    assert postmasters(state / "postgres") == []


@pytest.mark.timeout(2400)
def test_after_being_killed_the_next_make_dev_stops_what_the_first_left(
    state: Path, keycloak_port: int, tmp_path: Path
) -> None:
    first = Platform(state, keycloak_port, tmp_path / "dev-1.log", via_make=False, superset=False)
    killed = first.processes()
    first.stop(signal.SIGKILL, group=False)
    # Its children end by their parent-death signal; the daemonised PostgreSQL and Keycloak (a session
    # of its own) do not.
    assert postmasters(state / "postgres"), "a killed supervisor leaves PostgreSQL running"
    assert keycloak_processes(state), "a killed supervisor leaves Keycloak running"

    second = Platform(state, keycloak_port, tmp_path / "dev-2.log", via_make=False, superset=False)
    processes = second.processes()
    output = second.output()
    assert "left running" in output, "the stale PostgreSQL is named as it is stopped"
    assert "reusing the Keycloak an earlier run started and left" in output
    assert_every_part_answers(second, superset=False)
    second.stop(signal.SIGINT, group=True)
    time.sleep(1)
    assert left_running(killed + processes, state) == [], second.output()[-4000:]
    assert postmasters(state / "postgres") == []
