"""Registry throughput: ``GET /db/notebooks/{id}`` and ``POST /db/notebooks`` with 32 concurrent clients,
against our registry and against the seed-style baseline (``bench/baselines/seed_registry.py``: sync
handlers, a psycopg2 session per request, one uvicorn worker), side by side in one run over the same
PostgreSQL; plus a raw asyncpg loop running the GET's queries, the ceiling of what any server could do.

Targets (issue 10): ours >= 3x the baseline's requests per second, and a p99 at most half the baseline's,
on GET and on POST. Each row also gives the server's CPU per request, which, unlike requests per second,
does not depend on the share of a busy machine's cores the server is given.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
from nbp_common import migrations
from nbp_registry.main import SPEC
from nbp_registry.service import NOTEBOOK_DETAIL_SQL

from bench._support import Load, drive, embedded_postgres, env_with
from tests.support.common import ServiceProcess, asyncpg_dsn, free_port, start_process

CLIENTS = 32
SECONDS = 10
ROUNDS = 2  # alternate the servers, so that a slow moment of the machine does not favour one of them
RPS_TARGET = 3.0  # ours / baseline, at least
P99_TARGET = 0.5  # ours / baseline, at most


def seed_notebook(base_url: str) -> int:
    created = httpx.post(
        f"{base_url}/db/notebooks",
        json={"name": "bench", "file_path": "bench/read.ipynb", "username": "bench", "tags": ["a", "b"]},
    ).json()
    parameters = [
        {"param_name": f"p{i}", "param_type": "int", "default_value": i, "validation_rules": {"min": 0}}
        for i in range(5)
    ]
    httpx.post(f"{base_url}/db/parameters/bulk/{created['id']}", json=parameters).raise_for_status()
    return int(created["id"])


async def asyncpg_ceiling(dsn: str, notebook_id: int, seconds: float) -> Load:
    pool = await asyncpg.create_pool(dsn, min_size=20, max_size=20)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with pool.acquire() as conn:
                await conn.fetchval(NOTEBOOK_DETAIL_SQL, notebook_id, None)
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    elapsed = time.perf_counter() - began
    await pool.close()
    latencies.sort()
    return Load(
        requests=len(latencies),
        errors=0,
        rps=len(latencies) / elapsed,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000,
    )


def best(loads: list[Load]) -> Load:
    return max(loads, key=lambda load: load.rps)


def main() -> None:
    logs = Path(tempfile.mkdtemp(prefix="nbp-bench-"))
    with embedded_postgres() as url:
        migrations.upgrade(SPEC.migrations, url)
        database_url = url.render_as_string(hide_password=False)
        psycopg2_url = url.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)

        ours_port, baseline_port = free_port(), free_port()
        python_bin = Path(sys.executable).parent
        ours = start_process(
            [str(python_bin / "nbp-registry"), "serve", "--port", str(ours_port)],
            env_with(NBP_DATABASE_URL=database_url),
            ours_port,
            logs / "ours.log",
        )
        baseline: ServiceProcess | None = None
        try:
            baseline = start_process(
                [
                    str(python_bin / "uvicorn"),
                    "bench.baselines.seed_registry:app",
                    "--port",
                    str(baseline_port),
                    "--workers",
                    "1",
                ],
                env_with(BENCH_PSYCOPG2_URL=psycopg2_url),
                baseline_port,
                logs / "baseline.log",
                health_path="/docs",
            )
            notebook_id = seed_notebook(ours.url)
            servers = {"baseline": baseline, "ours": ours}
            results: dict[tuple[str, str], list[Load]] = {}
            for round_number in range(ROUNDS):
                for name, server in servers.items():
                    base, pid = server.url, server.process.pid
                    get = drive(
                        f"{base}/db/notebooks/{notebook_id}", clients=CLIENTS, seconds=SECONDS, server_pid=pid
                    )
                    run = f"{name}-{round_number}"
                    body = (
                        f'{{"name": "{run}-%d", "file_path": "bench/{run}-%d.ipynb",'
                        ' "username": "bench", "tags": ["x"], "metadata": {"k": 1}}'
                    )
                    post = drive(
                        f"{base}/db/notebooks",
                        method="POST",
                        body=body,
                        clients=CLIENTS,
                        seconds=SECONDS,
                        server_pid=pid,
                    )
                    results.setdefault(("GET", name), []).append(get)
                    results.setdefault(("POST", name), []).append(post)
            ceiling = asyncio.run(asyncpg_ceiling(asyncpg_dsn(url), notebook_id, SECONDS))
        finally:
            ours.stop()
            if baseline is not None:
                baseline.stop()

    print(f"{CLIENTS} concurrent clients, {SECONDS}s per measurement, best of {ROUNDS} alternating rounds")
    print(
        f"{'endpoint':<28}{'server':<10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}"
        f"{'CPU ms/req':>12}"
    )
    verdicts = []
    for method, path in (("GET", "/db/notebooks/{id}"), ("POST", "/db/notebooks")):
        rows = {name: best(results[(method, name)]) for name in ("baseline", "ours")}
        for name, load in rows.items():
            print_row(f"{method} {path}", name, load)
        mine, theirs = rows["ours"], rows["baseline"]
        ratio = mine.rps / theirs.rps
        p99_ratio = mine.p99_ms / theirs.p99_ms
        verdicts.append(ratio >= RPS_TARGET and p99_ratio <= P99_TARGET and mine.errors == 0)
        print(f"  -> ours / baseline: {ratio:.2f}x req/s (target >= {RPS_TARGET:g}x)")
        print(
            f"  -> server CPU per request: ours {mine.cpu_ms_per_request:.2f} ms, baseline"
            f" {theirs.cpu_ms_per_request:.2f} ms: {theirs.cpu_ms_per_request / mine.cpu_ms_per_request:.2f}x"
            " less (what req/s becomes when both get the same share of the cores)"
        )
        print(
            f"  -> p99: ours {mine.p99_ms:.1f} ms, baseline {theirs.p99_ms:.1f} ms:"
            f" {p99_ratio:.2f}x (target <= {P99_TARGET:g}x)"
        )
        if method == "GET":
            print_row("raw asyncpg, same queries", "ceiling", ceiling)
            print(f"  -> ours / ceiling: {mine.rps / ceiling.rps:.2f}x")
    print("target met" if all(verdicts) else "TARGET NOT MET")


def print_row(label: str, server: str, load: Load) -> None:
    cpu = f"{load.cpu_ms_per_request:.2f}" if load.server_cpu_seconds else "-"
    print(
        f"{label:<28}{server:<10}{load.rps:>10.0f}{load.p50_ms:>10.1f}{load.p99_ms:>10.1f}{load.errors:>8}"
        f"{cpu:>12}"
    )
