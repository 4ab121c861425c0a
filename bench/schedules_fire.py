"""Schedule firing: 1,000 schedules due in the same minute, all fired, and how late.

1,000 every-minute schedules (created through the API), then two consecutive fire times measured:
the first with ONE executor process firing (the baseline), the next with TWO replicas sharing the work
(each fire time still claimed once). Fire latency = when the claim (with its queued run) was written
(``schedule_fires.fired_at``) minus the nominal fire time. Target: p99 <= 2 s. Executors run with
``NBP_EXECUTOR_WORKERS=0``: this measures firing, not running notebooks (which the executor_latency
benchmark measures). Registry, history and executors are processes over an embedded PostgreSQL.
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
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT extract(epoch FROM fired_at - fire_time) AS lag FROM executor.schedule_fires "
            "WHERE fire_time = $1",
            fire_time,
        )
        runs = await conn.fetchval(
            "SELECT count(*) FROM executor.jobs WHERE fire_time = $1 AND schedule_id IS NOT NULL", fire_time
        )
    finally:
        await conn.close()
    return [float(r["lag"]) for r in rows], int(runs)


def next_minute(after: datetime) -> datetime:
    return after.replace(second=0, microsecond=0) + timedelta(minutes=1)


def wait_until(instant: datetime) -> None:
    time.sleep(max(0.0, (instant - datetime.now(UTC)).total_seconds()))


def report(label: str, lags: list[float], runs: int) -> float:
    p50, p99 = percentile(lags, 0.5), percentile(lags, 0.99)
    print(
        f"  {label:<28} fired {len(lags):5d}/{SCHEDULES}, runs queued {runs:5d}   "
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
            first = start_service("executor", url, logs, **env)
            services.append(first)
            started = time.perf_counter()
            asyncio.run(create(first.url))
            print(f"{SCHEDULES} every-minute schedules created in {time.perf_counter() - started:.1f} s")
            one = next_minute(datetime.now(UTC))
            wait_until(one + timedelta(seconds=20))
            lags_one, runs_one = asyncio.run(latencies(url, one))
            replica = start_service("executor", url, logs, **env)
            services.append(replica)
            two = next_minute(datetime.now(UTC))
            wait_until(two + timedelta(seconds=20))
            lags_two, runs_two = asyncio.run(latencies(url, two))
        finally:
            for service in reversed(services):
                service.stop()

    print(
        f"fire latency (claim committed - nominal fire time), {SCHEDULES} schedules due at the same minute:"
    )
    base = report("one executor (baseline)", lags_one, runs_one)
    both = report("two executor replicas", lags_two, runs_two)
    print(f"  -> two replicas / one: p99 {both / base:.2f}x")
    ok = all(
        (len(lags) == SCHEDULES and runs == SCHEDULES and percentile(lags, 0.99) <= 2.0)
        for lags, runs in ((lags_one, runs_one), (lags_two, runs_two))
    )
    print("target met (all fired once, p99 <= 2 s)" if ok else "TARGET NOT MET")


if __name__ == "__main__":
    main()
