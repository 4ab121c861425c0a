"""Synthetic runs for the history at scale, written straight into its table (as a backfill or a restore
would) by one INSERT ... SELECT: the history benchmark loads a million, its plan test a hundred thousand.

Shape: ``count`` runs queued evenly over the last ``days`` days; 100 notebooks, notebook n owned by user
n % 25; 90% completed, 7% failed, 1% timed out, 1% cancelled, the newest 0.1% queued or running;
each notebook's durations within +-50% of its own typical one,
those spread from 1 s to over an hour.
"""

from __future__ import annotations

import asyncpg

NOTEBOOKS = 100
USERS = 25


def insert_runs_sql(count: int, days: float) -> str:
    return f"""
        INSERT INTO history.notebook_executions (
            id, notebook_id, notebook_name, username, input_path, output_path, status, queued_at,
            started_at, completed_at, execution_time_seconds, kernel_name, parameters_used
        )
        SELECT g, nb, 'notebook-' || nb, 'user' || (nb % {USERS}), 'notebook-' || nb || '.ipynb',
               'outputs/notebook-' || nb || '-' || g || '.ipynb', status, queued,
               CASE WHEN status = 'queued' THEN NULL ELSE queued + interval '1 second' END,
               CASE WHEN status IN ('queued', 'running') THEN NULL
                    ELSE queued + interval '1 second' + seconds * interval '1 second' END,
               CASE WHEN status IN ('queued', 'running') THEN NULL ELSE seconds END,
               'python3', jsonb_build_object('n', g)
        FROM (
            SELECT g, 1 + (g * 7919) % {NOTEBOOKS} AS nb,
                   now() - ({count} - g) * (interval '{days} days' / {count}) AS queued,
                   2 ^ ((1 + (g * 7919) % {NOTEBOOKS}) % 13) * (0.5 + ((g * 104729) % 1000) / 1000.0)
                       AS seconds,
                   CASE WHEN g > {count} - {count} / 2000 THEN 'queued'
                        WHEN g > {count} - {count} / 1000 THEN 'running'
                        WHEN g % 100 < 7 THEN 'failed'
                        WHEN g % 100 = 7 THEN 'timed_out'
                        WHEN g % 100 = 8 THEN 'cancelled'
                        ELSE 'completed' END AS status
            FROM generate_series(1::bigint, {count}) AS g
        ) AS runs
    """


async def load_runs(conn: asyncpg.Connection, count: int, days: float) -> None:
    """Insert the runs as a restore would: the runs table's secondary indexes dropped first and built
    again after (one sorted build each, instead of a million scattered index insertions)."""
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'history'"
        " AND tablename = 'notebook_executions' AND indexname <> 'pk_notebook_executions'"
    )
    for index in indexes:
        await conn.execute(f"DROP INDEX history.{index['indexname']}")
    await conn.execute(insert_runs_sql(count, days))
    for index in indexes:
        await conn.execute(index["indexdef"])
