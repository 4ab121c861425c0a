"""What the benchmarks share: an embedded PostgreSQL, the Go load generator, servers as processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"


@dataclass(frozen=True)
class Load:
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    total: int = 0  # every request answered, the load generator's warm-up included
    server_cpu_seconds: float = 0.0  # the server process's CPU time over the whole drive, when asked

    @property
    def cpu_ms_per_request(self) -> float:
        """The server's CPU per request: what it costs, whatever share of the machine it was given."""
        return 1000 * self.server_cpu_seconds / self.total if self.total else 0.0


@contextmanager
def embedded_postgres(database: str = "bench") -> Iterator[URL]:
    """A throw-away PostgreSQL with one empty database, as an asyncpg URL."""
    import pgserver

    server = pgserver.get_server(Path(tempfile.mkdtemp(prefix="nbp-bench-pg-")), cleanup_mode="delete")
    server.psql(f'CREATE DATABASE "{database}";')
    yield make_url(server.get_uri()).set(drivername="postgresql+asyncpg", database=database)


def loadgen() -> Path:
    """The load generator, built from ``bench/loadgen`` into the cache on first use."""
    binary = CACHE / "loadgen"
    source = ROOT / "bench" / "loadgen"
    if not binary.exists() or binary.stat().st_mtime < (source / "main.go").stat().st_mtime:
        if shutil.which("go") is None:
            raise SystemExit(
                "the benchmarks need Go for their load generator: install it (e.g. apt-get install golang)"
            )
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "build", "-o", str(binary), "."], cwd=source, check=True)
    return binary


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(
    url: str,
    *,
    method: str = "GET",
    body: str = "",
    clients: int = 32,
    seconds: float = 10,
    server_pid: int | None = None,
    **extra: Any,
) -> Load:
    """Drive ``url`` with the load generator; with ``server_pid``, also the CPU that server spent on it
    (on a shared machine requests per second follow the share of the cores a server gets; its CPU per
    request does not)."""
    command = [str(loadgen()), "-url", url, "-method", method, "-c", str(clients), "-d", f"{seconds}s"]
    if body:
        command += ["-body", body]
    for key, value in extra.items():
        command += [f"-{key}", str(value)]
    cpu_before = process_cpu_seconds(server_pid) if server_pid is not None else 0.0
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    cpu = process_cpu_seconds(server_pid) - cpu_before if server_pid is not None else 0.0
    fields = {k: v for k, v in json.loads(output).items() if k in Load.__dataclass_fields__}
    return Load(**fields, server_cpu_seconds=cpu)


def env_with(**values: str) -> dict[str, str]:
    return {**os.environ, **values}
