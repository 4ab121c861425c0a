"""The history at a million runs: a run by id (the baseline) against the first page, filtered pages, a
page of old runs, a page deep in the list by cursor (and, for reference, by offset), and 30-day stats,
all through the API of one ``nbp-history`` process over PostgreSQL; the stats' totals checked exactly
against the runs table.

    make bench BENCH=history_scale        (HISTORY_SCALE_RUNS=100000 for a quicker look)

Targets: every list read <= 3x the read by id; the stats <= 10x; the stats' totals exact.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from nbp_common import migrations
from nbp_history.main import SPEC
from nbp_history.rollups.maintain import FILL_RUN_ROLLUPS
from nbp_history.runs.cursor import Cursor

from bench._history_runs import load_runs
from bench._support import embedded_postgres, env_with
from tests.support.common import asyncpg_dsn, free_port, start_process

RUNS = int(os.environ.get("HISTORY_SCALE_RUNS", "1000000"))
DAYS = 30
REPEAT = 40


async def load(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await load_runs(conn, RUNS, DAYS)
        inserted = time.perf_counter()
        for _grain, fill in FILL_RUN_ROLLUPS:
            await conn.execute(fill)
        rolled = time.perf_counter()
        await conn.execute("VACUUM ANALYZE history.notebook_executions")
        print(
            f"loaded {RUNS} runs in {inserted - started:.1f}s, rollups in {rolled - inserted:.1f}s",
            flush=True,
        )
        deep = await conn.fetchrow(
            "SELECT queued_at, id FROM history.notebook_executions ORDER BY queued_at DESC, id DESC"
            " OFFSET $1 LIMIT 1",
            RUNS // 2,
        )
        since = datetime.now(UTC) - timedelta(days=DAYS)
        exact = dict(
            await conn.fetch(
                "SELECT status, count(*) FROM history.notebook_executions"
                " WHERE queued_at >= date_trunc('hour', $1::timestamptz) GROUP BY status",
                since,
            )
        )
        return {"deep": Cursor(deep["queued_at"], deep["id"]).encode(), "since": since, "exact": exact}
    finally:
        await conn.close()


def timed(client: httpx.Client, path: str, params: dict[str, Any]) -> tuple[float, httpx.Response]:
    samples = []
    response = client.get(path, params=params)  # warm
    for _ in range(REPEAT):
        started = time.perf_counter()
        response = client.get(path, params=params)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return statistics.median(samples), response


def main() -> None:
    import asyncio

    logs = Path(tempfile.mkdtemp(prefix="nbp-bench-"))
    with embedded_postgres() as url:
        migrations.upgrade(SPEC.migrations, url)
        facts = asyncio.run(load(asyncpg_dsn(url)))
        port = free_port()
        server = start_process(
            [str(Path(sys.executable).parent / "nbp-history"), "serve", "--port", str(port)],
            env_with(NBP_DATABASE_URL=url.render_as_string(hide_password=False), NBP_AUTH="none"),
            port,
            logs / "history.log",
        )
        now = datetime.now(UTC)
        reads: list[tuple[str, str, dict[str, Any], float]] = [
            ("one run by id (baseline)", f"/db/executions/{RUNS // 3}", {}, 1),
            ("first page (100)", "/db/executions", {}, 3),
            ("?username=user7", "/db/executions", {"username": "user7"}, 3),
            ("?status=failed", "/db/executions", {"status": "failed"}, 3),
            ("?notebook_id=42", "/db/executions", {"notebook_id": 42}, 3),
            (
                "old runs (started_before 6 days)",
                "/db/executions",
                {"started_before": (now - timedelta(days=6))},
                3,
            ),
            ("deep page by cursor (half-way)", "/db/executions", {"cursor": facts["deep"]}, 3),
            ("deep page by offset (reference)", "/db/executions", {"offset": RUNS // 2}, 0),
            ("stats over 30 days", "/db/executions/stats", {"since": facts["since"]}, 10),
        ]
        figures = []
        try:
            with httpx.Client(base_url=server.url, timeout=120) as client:
                for label, path, params, target in reads:
                    params = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in params.items()}
                    median, response = timed(client, path, params)
                    figures.append((label, median, target, response))
        finally:
            server.stop()

    baseline = figures[0][1]
    print(f"{RUNS} runs over {DAYS} days; median of {REPEAT} sequential reads each; load: {os.getloadavg()}")
    print(f"{'read':<36}{'ms':>9}{'x by id':>9}{'target':>9}")
    verdicts = []
    for label, median, target, response in figures:
        ratio = median / baseline
        ok = target == 0 or ratio <= target
        if target:
            verdicts.append(ok)
        mark = f"<= {target:g}x" if target else "-"
        print(f"{label:<36}{median:>9.1f}{ratio:>9.2f}{mark:>9}{'' if ok else '  MISSED'}")
        if total := response.headers.get("X-Total-Count"):
            estimated = response.headers["X-Total-Count-Estimated"]
            print(f"{'':<36}X-Total-Count {total} (estimated: {estimated})")
    stats = figures[-1][3].json()
    exact = {status: int(facts["exact"].get(status, 0)) for status in stats["by_status"]}
    totals_ok = stats["by_status"] == exact
    verdicts.append(totals_ok)
    print(f"stats by status: {stats['by_status']}")
    print(f"runs table:      {exact} -> {'exact' if totals_ok else 'DIFFERENT'}")
    print("target met" if all(verdicts) else "TARGET NOT MET")
