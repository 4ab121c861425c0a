"""Schedule firing: 1,000 schedules due in the same minute, all fired, and how late.

1,000 every-minute schedules (created through the API), then three consecutive fire times measured:
ONE executor process claiming at the fire time (``NBP_SCHEDULER_LEAD_SECONDS=0``, the way session 1
fired: the baseline), ONE executor process with the default lead (the schedules due at the next fire
time claimed ahead in open transactions, committed at it), and TWO replicas sharing the work (each fire
time still claimed once). Fire latency = when a reader first sees the claim committed (a separate
connection polls ``schedule_fires`` every 20 ms) minus the nominal fire time. Target: p99 <= 2 s.
Executors run with ``NBP_EXECUTOR_WORKERS=0``: this measures firing, not running notebooks (which the
executor_latency benchmark measures). Registry, history and executors are processes over an embedded
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import nbformat
from nbp_common import migrations
from nbp_platform import SERVICES
from sqlalchemy.engine import URL

from bench._support import embedded_postgres
from tests.support.common import ServiceProcess, asyncpg_dsn, start_service

SCHEDULES = int(os.environ.get("NBP_BENCH_SCHEDULES", "1000"))
USER = "bench"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def create(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        semaphore = asyncio.Semaphore(8)

        async def one(n: int) -> None:
            async with semaphore:
                body = {
                    "username": USER,
                    "notebook_path": "tick.ipynb",
                    "cron": "* * * * *",
                    # No workers run them here: a fire must not be skipped for runs still queued.
                    "max_concurrent": 100,
                    "description": str(n),
                }
                response = await client.post("/schedules", json=body)
                for _ in range(5):  # a busy machine: the registry may time out (503); try again
                    if response.status_code != 503:
                        break
                    await asyncio.sleep(1)
                    response = await client.post("/schedules", json=body)
                response.raise_for_status()

        await asyncio.gather(*(one(n) for n in range(SCHEDULES)))


async def latencies(url: URL, fire_time: datetime) -> tuple[list[float], int]:
    """Polls the claims of ``fire_time`` from its start until all are seen (or 60 s): each claim's lag
    is when it was first seen committed; and the runs queued for it."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await asyncio.sleep(max(0.0, (fire_time - datetime.now(UTC)).total_seconds() - 1))
        lags: list[float] = []
        while len(lags) < SCHEDULES and datetime.now(UTC) < fire_time + timedelta(seconds=60):
            seen = await conn.fetchval(
                "SELECT count(*) FROM executor.schedule_fires WHERE fire_time = $1", fire_time
            )
            lag = (datetime.now(UTC) - fire_time).total_seconds()
            lags += [lag] * (int(seen) - len(lags))
            await asyncio.sleep(0.02)
        runs = await conn.fetchval(
            "SELECT count(*) FROM executor.jobs WHERE fire_time = $1 AND schedule_id IS NOT NULL", fire_time
        )
    finally:
        await conn.close()
    return lags, int(runs)


def next_minute(after: datetime) -> datetime:
    return after.replace(second=0, microsecond=0) + timedelta(minutes=1)


async def measure(url: URL) -> tuple[list[float], int]:
    """The next minute's fire time, measured (a minute boundary at least 10 s away: processes just
    started have settled)."""
    return await latencies(url, next_minute(datetime.now(UTC) + timedelta(seconds=10)))


def report(label: str, measured: tuple[list[float], int]) -> float:
    lags, runs = measured
    if not lags:
        print(f"  {label:<34} fired     0/{SCHEDULES}")
        return float("inf")
    p50, p99 = percentile(lags, 0.5), percentile(lags, 0.99)
    print(
        f"  {label:<34} fired {len(lags):5d}/{SCHEDULES}, runs queued {runs:5d}   "
        f"p50 {p50 * 1000:7.0f} ms   p99 {p99 * 1000:7.0f} ms   max {max(lags) * 1000:7.0f} ms"
    )
    return p99


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="nbp-bench-schedules-"))
    workspace = work / "workspace"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    (workspace / USER).mkdir(parents=True)
    nbformat.write(nb, str(workspace / USER / "tick.ipynb"))
    logs = work / "logs"
    logs.mkdir()
    services: list[ServiceProcess] = []
    with embedded_postgres("bench_schedules") as url:
        for spec in SERVICES:
            migrations.upgrade(spec.migrations, url)
        try:
            quiet = {"NBP_LOG_LEVEL": "WARNING", "NBP_LOG_JSON": "false"}
            registry = start_service("registry", url, logs, **quiet)
            history = start_service("history", url, logs, **quiet)
            services += [registry, history]
            env = {
                "NBP_WORKSPACE": str(workspace),
                "NBP_REGISTRY_URL": registry.url,
                "NBP_HISTORY_URL": history.url,
                "NBP_EXECUTOR_WORKERS": "0",
                "NBP_DB_POOL_SIZE": "20",
                **quiet,
            }
            claim_at_fire = start_service("executor", url, logs, **env, NBP_SCHEDULER_LEAD_SECONDS="0")
            services.append(claim_at_fire)
            started = time.perf_counter()
            asyncio.run(create(claim_at_fire.url))
            print(f"{SCHEDULES} every-minute schedules created in {time.perf_counter() - started:.1f} s")
            measured = [("one executor, lead 0 (baseline)", asyncio.run(measure(url)))]
            claim_at_fire.stop()
            services.remove(claim_at_fire)
            services.append(start_service("executor", url, logs, **env))
            measured.append(("one executor, default lead", asyncio.run(measure(url))))
            services.append(start_service("executor", url, logs, **env))
            measured.append(("two executor replicas", asyncio.run(measure(url))))
        finally:
            for service in reversed(services):
                service.stop()

    print(
        f"fire latency (claim seen committed - nominal fire time), {SCHEDULES} schedules due at one minute:"
    )
    base = report(*measured[0])
    for label, (lags, runs) in measured[1:]:
        p99 = report(label, (lags, runs))
        print(f"  {'':<34} -> p99 {p99 / base:.2f}x the baseline")
    ok = all(len(lags) == SCHEDULES and runs == SCHEDULES for _, (lags, runs) in measured) and all(
        percentile(lags, 0.99) <= 2.0 for _, (lags, _) in measured[1:]
    )
    print("target met (all fired once, p99 <= 2 s)" if ok else "TARGET NOT MET")


if __name__ == "__main__":
    main()
