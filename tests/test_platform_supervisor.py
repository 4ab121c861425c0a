"""``make dev``: every part of the platform answers on its own port (all overridable), and nothing of it
is left after Ctrl-C or SIGTERM -- nor, after it was killed outright, once the next ``make dev`` stops."""

from __future__ import annotations

import os
import shutil
import signal
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
from tests.support.keycloak import LocalKeycloak, keycloak, repo_root

__all__ = ["keycloak"]

UP = "notebook-platform is up"


class Platform:
    def __init__(self, state: Path, log: Path, via_make: bool) -> None:
        self.state = state
        self.log = log
        self.ports = {name: free_port() for name in ("API", "HUB", "HUB_API", "HUB_PROXY_API", "SUPERSET")}
        env = {k: v for k, v in os.environ.items() if not k.startswith("NBP_") or k == "NBP_KEYCLOAK_PORT"}
        env.update({f"NBP_{name}_PORT": str(port) for name, port in self.ports.items()})
        env.update(NBP_STATE_DIR=str(state), NBP_SUPERSET_COMMAND="")
        repo = repo_root()
        command = (
            ["make", "--no-print-directory", "-C", str(repo), "dev"]
            if via_make
            else [
                str(repo / ".venv" / "bin" / "nbp-platform"),
                "--repo",
                str(repo),
            ]
        )
        with log.open("wb") as out:
            # Its own process group, as a terminal's foreground job: Ctrl-C goes to the whole group.
            self.process = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 400
        while UP not in log.read_text(errors="replace"):
            assert self.process.poll() is None, f"make dev exited:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"make dev did not come up:\n{log.read_text()[-4000:]}"
            time.sleep(1)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def stop(self, sig: signal.Signals, *, group: bool) -> None:
        if group:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        self.process.wait(timeout=180)


@pytest.fixture
def state() -> Iterator[Path]:
    """The platform's state folder, outside pytest's private tmp (PostgreSQL runs as its own user)."""
    folder = Path(tempfile.mkdtemp(prefix="nbp-platform-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def left_running(processes: list[psutil.Process]) -> list[str]:
    alive = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            continue
    return alive


@pytest.mark.timeout(1200)
@pytest.mark.parametrize(
    ("sig", "group"),
    [(signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["ctrl-c-to-the-foreground-group", "sigterm-to-make"],
)
def test_make_dev_serves_every_part_and_leaves_nothing_running(
    keycloak: LocalKeycloak, state: Path, tmp_path: Path, sig: signal.Signals, group: bool
) -> None:
    platform = Platform(state, tmp_path / "dev.log", via_make=True)
    processes = platform.processes()
    try:
        output = platform.log.read_text()
        for name in ("API", "HUB"):
            assert platform.url(name) in output, f"the {name} URL is printed"
        assert all(user in output for user in ("alice", "bob", "carol", "dana", "erin")), "dev users printed"
        assert httpx.get(f"{platform.url('API')}/ready", timeout=30).json()["status"] == "ready"
        assert httpx.get(f"{platform.url('HUB')}/hub/health", timeout=30).status_code == 200
        assert httpx.get(f"{keycloak.issuer}/.well-known/openid-configuration", timeout=30).status_code == 200
        assert postmasters(state / "postgres"), "the embedded PostgreSQL runs"
        # The API verifies Keycloak's tokens: make dev is the platform as deployed, not NBP_AUTH=none.
        assert httpx.get(f"{platform.url('API')}/db/notebooks", timeout=30).status_code == 401
    finally:
        platform.stop(sig, group=group)
    time.sleep(1)
    assert left_running(processes) == [], platform.log.read_text()[-3000:]
    assert postmasters(state / "postgres") == []


@pytest.mark.timeout(1200)
def test_after_being_killed_the_next_make_dev_stops_what_the_first_left(
    keycloak: LocalKeycloak, state: Path, tmp_path: Path
) -> None:
    first = Platform(state, tmp_path / "dev-1.log", via_make=False)
    first.stop(signal.SIGKILL, group=False)
    # Its children end by their parent-death signal; the daemonised PostgreSQL does not.
    assert postmasters(state / "postgres"), "a killed supervisor leaves PostgreSQL running"

    second = Platform(state, tmp_path / "dev-2.log", via_make=False)
    processes = second.processes()
    assert "left running" in second.log.read_text(), "the stale PostgreSQL is named as it is stopped"
    second.stop(signal.SIGINT, group=True)
    time.sleep(1)
    assert left_running(processes) == [], second.log.read_text()[-3000:]
    assert postmasters(state / "postgres") == []
