"""`make dev`'s server: an embedded PostgreSQL kept under its data folder, every route on one port,
and nothing left running after Ctrl-C. And each service alone, as its container runs it."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
from sqlalchemy.engine import URL

from tests.support.common import ServiceProcess, free_port, start_process, start_service

FROZEN = re.compile(r"\((\d+) objects of the start frozen out of the collector's passes\)")


def frozen_at_start(server: ServiceProcess) -> int:
    """How many objects the server froze out of the garbage collector before serving (its log)."""
    found = FROZEN.search(server.log.read_text())
    assert found is not None, f"{server.log} says nothing of the start's objects frozen"
    return int(found.group(1))


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(data_dir.resolve()) in " ".join(
            proc.info["cmdline"] or []
        ):
            found.append(proc)
    return found


def start_dev(data_dir: Path, log: Path) -> tuple[ServiceProcess, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBP_")}
    command = [
        str(Path(sys.executable).with_name("nbp-dev")),
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    return start_process(command, {**env, "NBP_LOG_JSON": "false"}, port, log, timeout=120), port


def test_dev_server_serves_everything_keeps_data_and_leaves_no_postgres(tmp_path: Path) -> None:
    data_dir = tmp_path / "postgres"
    server, _ = start_dev(data_dir, tmp_path / "dev-1.log")
    try:
        assert httpx.get(f"{server.url}/ready").json()["status"] == "ready"
        # The same start path as a service's `serve`: the start's objects frozen out of the GC.
        assert frozen_at_start(server) > 10_000
        created = httpx.post(
            f"{server.url}/db/notebooks",
            json={"name": "kept", "file_path": "kept.ipynb", "username": "alice"},
        )
        assert created.status_code == 201
        assert httpx.get(f"{server.url}/db/executions").status_code == 200
        assert postgres_processes(data_dir), "the embedded PostgreSQL should be running"
    finally:
        assert server.stop(signal.SIGINT) == 0
    assert postgres_processes(data_dir) == [], "Ctrl-C must stop the embedded PostgreSQL"

    again, _ = start_dev(data_dir, tmp_path / "dev-2.log")
    try:
        names = [n["name"] for n in httpx.get(f"{again.url}/db/notebooks").json()]
        assert names == ["kept"], "data under the data folder survives a restart"
    finally:
        assert again.stop(signal.SIGINT) == 0
    assert postgres_processes(data_dir) == []


def test_each_service_serves_alone_on_its_own_port(database_url: URL, tmp_path: Path) -> None:
    registry = start_service("registry", database_url, tmp_path)
    history = start_service("history", database_url, tmp_path)
    try:
        assert registry.url != history.url
        assert httpx.get(f"{registry.url}/db/notebooks").status_code == 200
        assert httpx.get(f"{registry.url}/db/executions").status_code == 404
        assert httpx.get(f"{history.url}/db/executions").status_code == 200
        assert httpx.get(f"{history.url}/db/notebooks").status_code == 404
        for service in (registry, history):
            assert httpx.get(f"{service.url}/ready").json()["status"] == "ready"
            assert frozen_at_start(service) > 10_000
    finally:
        registry.stop()
        history.stop()


def test_without_authentication_a_service_refuses_to_listen_beyond_loopback(database_url: URL) -> None:
    env = {
        **os.environ,
        "NBP_AUTH": "none",
        "NBP_DATABASE_URL": database_url.render_as_string(hide_password=False),
    }
    for command in (["nbp-registry", "serve", "--host", "0.0.0.0"], ["nbp-dev", "--host", "192.0.2.1"]):
        executable = str(Path(sys.executable).with_name(command[0]))
        result = subprocess.run(
            [executable, *command[1:]], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2, result.stderr
        assert "NBP_AUTH=none" in result.stderr
        assert "loopback" in result.stderr
