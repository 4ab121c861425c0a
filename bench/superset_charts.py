"""The Superset dashboards' charts over a history of a million runs: every chart's query exactly as
Superset builds it from the imported dashboards (its own SQL generation, in its own environment), run as
the dashboards' read-only role, timed side by side against a named baseline, one full scan of the runs
table (``SELECT count(*) FROM history.notebook_executions``: the least a chart over the raw runs table
costs, and it grows with the runs). Each chart's plan is summarised by the tables and indexes it reads.

    make bench BENCH=superset_charts      (SUPERSET_CHARTS_RUNS=100000 for a quicker look)

Target: every chart <= 0.5x the baseline, and none reads the runs table whole.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from nbp_history.rollups.maintain import FILL_DAILY, FILL_HOURLY, FILL_RESULTS_DAILY
from nbp_superset.launcher import (
    Layout,
    Login,
    ensure_installed,
    initialise,
    prepare_databases,
    superset_environment,
)

from bench._history_runs import load_runs
from bench._support import embedded_postgres

RUNS = int(os.environ.get("SUPERSET_CHARTS_RUNS", "1000000"))
DAYS = 30
REPEAT = 9
TARGET = 0.5
BASELINE = "SELECT count(*) FROM history.notebook_executions"
# For comparison, not a target: "Recorded results over time" as it read before the results rollup, the
# raw results joined to their runs (the run_results dataset), grouped per day, notebook and result.
RAW_RESULTS_OVER_TIME = """
    SELECT date_trunc('day', r.recorded_at) AS day, COALESCE(e.notebook_name, e.input_path) AS notebook,
           r.name AS result, AVG(r.value_numeric) AS mean_value
    FROM history.execution_results AS r
    JOIN history.notebook_executions AS e ON e.id = r.execution_id
    WHERE r.value_numeric IS NOT NULL AND r.recorded_at >= now() - interval '30 days'
    GROUP BY 1, 2, 3 ORDER BY 1 LIMIT 10000
"""

# Every 10th run records two results; owners are in one group, two, or none (by notebook).
RESULTS_SQL = """
    INSERT INTO history.execution_results (execution_id, name, value_numeric, recorded_at)
    SELECT id, name, (id % 1000) / 1000.0, coalesce(completed_at, queued_at)
    FROM history.notebook_executions CROSS JOIN (VALUES ('accuracy'), ('loss')) AS r(name)
    WHERE id % 10 = 0 AND status = 'completed'
"""
GROUPS_SQL = """
    UPDATE history.notebook_executions SET owner_groups = CASE notebook_id % 3
        WHEN 0 THEN '["data-scientists"]'::jsonb
        WHEN 1 THEN '["analysts", "data-scientists"]'::jsonb
        ELSE '[]'::jsonb END
"""

# Run by Superset's Python: each imported chart's queries, as Superset compiles them for the chart data API.
CHART_SQL = """
import json
from superset.app import create_app

app = create_app()
with app.app_context():
    from superset import db
    from superset.models.slice import Slice

    charts = {}
    for chart in db.session.query(Slice).order_by(Slice.id):
        context = chart.get_query_context()
        charts[chart.slice_name] = {
            "dataset": context.datasource.table_name,
            "sql": [context.datasource.get_query_str(query.to_dict()) for query in context.queries],
        }
    print("CHARTS " + json.dumps(charts))
"""


async def load(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await load_runs(conn, RUNS, DAYS)
        await conn.execute(GROUPS_SQL)
        await conn.execute(RESULTS_SQL)
        loaded = time.perf_counter()
        for fill in (FILL_HOURLY, FILL_DAILY, FILL_RESULTS_DAILY):
            await conn.execute(fill)
        rolled = time.perf_counter()
        tables = (
            "notebook_executions",
            "execution_results",
            "execution_rollups_daily",
            "execution_result_rollups_daily",
        )
        for table in tables:
            await conn.execute(f"VACUUM ANALYZE history.{table}")
        counts = {table: await conn.fetchval(f"SELECT count(*) FROM history.{table}") for table in tables}
        print(
            f"loaded in {loaded - started:.1f}s, rollups in {rolled - loaded:.1f}s; rows: {counts}",
            flush=True,
        )
    finally:
        await conn.close()


def chart_queries(layout: Layout, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    done = subprocess.run(
        [str(layout.bin("python")), "-c", CHART_SQL], env=env, check=True, capture_output=True, text=True
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("CHARTS "))
    charts: dict[str, dict[str, Any]] = json.loads(line.removeprefix("CHARTS "))
    return charts


def scans(plan: dict[str, Any]) -> set[str]:
    """The tables and indexes a plan reads: 'Seq Scan t', 'Index Scan t.i', ..."""
    found: set[str] = set()
    relation = plan.get("Relation Name")
    if relation:
        index = plan.get("Index Name")
        found.add(f"{plan['Node Type']} {relation}" + (f" ({index})" if index else ""))
    for child in plan.get("Plans", []):
        found |= scans(child)
    return found


async def timed(conn: asyncpg.Connection, sql: str) -> tuple[float, int, set[str]]:
    statement = sql.rstrip().rstrip(";")
    rows = await conn.fetch(statement)  # warm
    samples = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        await conn.fetch(statement)
        samples.append((time.perf_counter() - started) * 1000)
    plan = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {statement}"))[0]["Plan"]
    return statistics.median(samples), len(rows), scans(plan)


async def measure(reader_dsn: str, charts: dict[str, dict[str, Any]]) -> bool:
    conn = await asyncpg.connect(reader_dsn)
    try:
        baseline, _, _ = await timed(conn, BASELINE)
        print(f"\n{RUNS} runs over {DAYS} days; median of {REPEAT}; load average {os.getloadavg()}")
        print(f"baseline, a full scan of the runs table ({BASELINE}): {baseline:.1f} ms\n")
        print(f"{'chart':<52}{'dataset':<22}{'ms':>8}{'x base':>8}{'rows':>7}")
        met = True
        for name, chart in charts.items():
            for sql in chart["sql"]:
                median, rows, read = await timed(conn, sql)
                whole_runs = any(s.startswith("Seq Scan history.notebook_executions") for s in read)
                ok = median <= TARGET * baseline and not whole_runs
                met &= ok
                print(
                    f"{name[:51]:<52}{chart['dataset']:<22}{median:>8.1f}{median / baseline:>8.2f}{rows:>7}"
                    f"{'' if ok else '  MISSED'}"
                )
                print(f"{'':<4}reads: {'; '.join(sorted(read))}")
        raw, rows, read = await timed(conn, RAW_RESULTS_OVER_TIME)
        print(
            f"\nfor comparison, 'Recorded results over time' on the raw results (before the rollup): "
            f"{raw:.1f} ms, {raw / baseline:.2f}x base, {rows} rows\n{'':<4}reads: {'; '.join(sorted(read))}"
        )
        return met
    finally:
        await conn.close()


def main() -> None:
    layout = Layout.of_checkout()
    ensure_installed(layout)
    state = Path(tempfile.mkdtemp(prefix="nbp-bench-superset-"))
    values = {
        "NBP_SUPERSET_SECRET_KEY": secrets.token_urlsafe(32),
        "NBP_SUPERSET_DB_PASSWORD": secrets.token_urlsafe(16),
        "NBP_SUPERSET_RO_PASSWORD": secrets.token_urlsafe(16),
    }
    with embedded_postgres() as url:
        databases = prepare_databases(
            url.set(database="postgres"),
            values,
            platform_database=str(url.database),
            metadata_database="superset_bench",
        )
        asyncio.run(load(url.set(drivername="postgresql").render_as_string(hide_password=False)))
        # Superset's configuration needs a login to read; nothing signs in here.
        login = Login(issuer="http://127.0.0.1:9/realms/unused", client_secret="unused")
        env = superset_environment(
            layout, databases, login, values["NBP_SUPERSET_SECRET_KEY"], 9, state / "home"
        )
        initialise(layout, env, state)
        charts = chart_queries(layout, env)
        reader = databases.history.set(drivername="postgresql").render_as_string(hide_password=False)
        met = asyncio.run(measure(reader, charts))
    print("target met" if met else "TARGET NOT MET")
