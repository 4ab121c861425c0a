"""Keeping the rollups: one ended run added at intake, and the whole of them rebuilt from the runs table.

Invariants: the hourly rollups are the aggregate of the ended runs in the runs table plus what retention
removed (``execution_rollups_retired``); the six-hourly and daily rollups are the hourly ones summed per
six hours and per day, the weekly ones the daily ones summed per week; the daily result rollups are the
aggregate of the ended runs' numeric results plus what retention removed
(``execution_result_rollups_retired``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, text
from sqlalchemy.ext.asyncio import AsyncSession

from nbp_history.models import (
    ENDED_CONDITION,
    SCHEMA,
    DailyResultRollup,
    DailyRollup,
    Execution,
    ExecutionResult,
    HourlyRollup,
    QuarterDailyRollup,
    RetiredResultRollup,
    RetiredRollup,
    WeeklyRollup,
)
from nbp_history.rollups.histogram import bucket_sql

RUNS, RETIRED = (f"{SCHEMA}.{model.__tablename__}" for model in (Execution, RetiredRollup))
HOURLY, QUARTER_DAILY, DAILY, WEEKLY = (
    f"{SCHEMA}.{model.__tablename__}"
    for model in (HourlyRollup, QuarterDailyRollup, DailyRollup, WeeklyRollup)
)
RESULTS, RESULTS_DAILY, RESULTS_RETIRED = (
    f"{SCHEMA}.{model.__tablename__}" for model in (ExecutionResult, DailyResultRollup, RetiredResultRollup)
)
KEY = "period_start, notebook_id, username, status"
COLUMNS = f"{KEY}, notebook_name, runs, timed_runs, execution_time_sum, duration_histogram"
RESULT_KEY = "period_start, notebook_id, name"
RESULT_COLUMNS = f"{RESULT_KEY}, notebook_name, results, value_sum, value_min, value_max"


# Every period starts a whole number of its lengths after this Monday (UTC): days at midnight, weeks on
# Mondays, as PostgreSQL's date_trunc has them; each grain's periods are whole periods of the finer ones.
ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)


@dataclass(frozen=True)
class Grain:
    """The periods of one run rollup table."""

    name: str
    table: str
    length: timedelta

    def period_sql(self, moment: str) -> str:
        """SQL: the start of the period holding ``moment`` (a timestamptz)."""
        seconds = int(self.length.total_seconds())
        return f"date_bin('{seconds} seconds', {moment}, TIMESTAMPTZ '{ORIGIN.isoformat()}')"

    def floor(self, moment: datetime) -> datetime:
        return ORIGIN + (moment.astimezone(UTC) - ORIGIN) // self.length * self.length

    def ceil(self, moment: datetime) -> datetime:
        floor = self.floor(moment)
        return floor if floor == moment else floor + self.length


HOUR = Grain("hourly", HOURLY, timedelta(hours=1))
QUARTER_DAY = Grain("six-hourly", QUARTER_DAILY, timedelta(hours=6))
DAY = Grain("daily", DAILY, timedelta(days=1))
WEEK = Grain("weekly", WEEKLY, timedelta(days=7))
# Finest first; each a whole number of the one before.
GRAINS = (HOUR, QUARTER_DAY, DAY, WEEK)


def _merge_histograms(left: str, right: str) -> str:
    """SQL: the bucket-wise sum of two histograms."""
    both = f"SELECT * FROM jsonb_each_text({left}) UNION ALL SELECT * FROM jsonb_each_text({right})"
    return (
        "(SELECT coalesce(jsonb_object_agg(bucket, n), '{}') FROM"
        f" (SELECT key AS bucket, sum(value::bigint) AS n FROM ({both}) AS both_ GROUP BY key) AS summed)"
    )


# The ended run's values, as the row ``v`` the statements below add.
_ENDED_RUN = (
    "SELECT CAST(:queued_at AS timestamptz) AS queued_at, CAST(:notebook_id AS bigint) AS notebook_id,"
    " CAST(:username AS text) AS username, CAST(:status AS text) AS status,"
    " CAST(:notebook_name AS text) AS notebook_name, CAST(:seconds AS double precision) AS seconds"
)


def _add_one(grain: Grain) -> str:
    """SQL: the run ``v`` added to its period of ``grain``."""
    return (
        f"INSERT INTO {grain.table} AS r ({COLUMNS})"
        f" SELECT {grain.period_sql('v.queued_at')}, v.notebook_id, v.username, v.status,"
        " v.notebook_name, 1, (v.seconds IS NOT NULL)::int, coalesce(v.seconds, 0),"
        " CASE WHEN v.seconds IS NULL THEN '{}'::jsonb"
        f" ELSE jsonb_build_object(({bucket_sql('v.seconds')})::text, 1) END"
        " FROM v"
        f" ON CONFLICT ({KEY}) DO UPDATE SET runs = r.runs + 1,"
        " timed_runs = r.timed_runs + EXCLUDED.timed_runs,"
        " execution_time_sum = r.execution_time_sum + EXCLUDED.execution_time_sum,"
        " notebook_name = coalesce(EXCLUDED.notebook_name, r.notebook_name),"
        f" duration_histogram = {_merge_histograms('r.duration_histogram', 'EXCLUDED.duration_histogram')}"
    )


async def add_ended_run(session: AsyncSession, record: Execution) -> None:
    """Count ``record``, which has just ended, in its period of every grain, and its numeric results in
    its day's result rollups (in the caller's transaction).

    Called once per run: an ended record is never changed again, and the intake applies a run's
    events one at a time (duplicates and stale events change nothing)."""
    values = {
        "queued_at": record.queued_at,
        "notebook_id": record.notebook_id,
        "username": record.username,
        "status": record.status,
        "notebook_name": record.notebook_name,
        "seconds": record.execution_time_seconds,
    }
    await session.execute(_ADD_ENDED_RUN, {**values, "execution_id": record.id})


def _aggregate(source: str, grain: Grain) -> str:
    """SQL: rollup rows of ``grain`` from rows with the rollup columns (``source``), summed per key."""
    return f"""
        WITH rows_ AS (
            SELECT {grain.period_sql("period_start")} AS period_start, notebook_id, username, status,
                   notebook_name, runs, timed_runs, execution_time_sum, duration_histogram
            FROM {source} AS source_
        ), totals AS (
            SELECT {KEY}, max(notebook_name) AS notebook_name, sum(runs) AS runs,
                   sum(timed_runs) AS timed_runs, sum(execution_time_sum) AS execution_time_sum
            FROM rows_ GROUP BY {KEY}
        ), buckets AS (
            SELECT {KEY}, jsonb_object_agg(bucket, n) AS duration_histogram
            FROM (
                SELECT {KEY}, h.key AS bucket, sum(h.value::bigint) AS n
                FROM rows_ CROSS JOIN LATERAL jsonb_each_text(rows_.duration_histogram) AS h
                GROUP BY {KEY}, h.key
            ) AS per_bucket
            GROUP BY {KEY}
        )
        SELECT {_qualified("totals")}, totals.notebook_name, totals.runs, totals.timed_runs,
               totals.execution_time_sum, coalesce(buckets.duration_histogram, '{{}}')
        FROM totals LEFT JOIN buckets ON {_same_key("totals", "buckets")}
    """


def _qualified(table: str) -> str:
    return ", ".join(f"{table}.{column}" for column in KEY.split(", "))


def _same_key(left: str, right: str) -> str:
    """SQL: the two rows have the same key, a NULL notebook_id (a run of no registered notebook) included."""
    return " AND ".join(
        f"coalesce({left}.{c}, 0) = coalesce({right}.{c}, 0)"  # hashable, unlike IS NOT DISTINCT FROM
        if c == "notebook_id"  # ids are >= 1: 0 stands for none
        else f"{left}.{c} = {right}.{c}"
        for c in KEY.split(", ")
    )


def ended_runs_as_rows(source: str) -> str:
    """SQL: the ended runs of ``source`` (runs-shaped rows), one rollup-shaped row each."""
    return f"""
        SELECT queued_at AS period_start, notebook_id, username, status, notebook_name, 1 AS runs,
               (execution_time_seconds IS NOT NULL)::int AS timed_runs,
               coalesce(execution_time_seconds, 0) AS execution_time_sum,
               CASE WHEN execution_time_seconds IS NULL THEN '{{}}'::jsonb
                    ELSE jsonb_build_object(({bucket_sql("execution_time_seconds")})::text, 1) END
                   AS duration_histogram
        FROM {source} WHERE {ENDED_CONDITION}
    """


def add_rows(table: str, rows: str, grain: Grain = HOUR) -> str:
    """SQL: ``rows`` (rollup-shaped) summed per period of ``grain`` and key, and added to ``table``."""
    return (
        f"INSERT INTO {table} AS r ({COLUMNS}) {_aggregate(f'({rows})', grain)}"
        f" ON CONFLICT ({KEY}) DO UPDATE SET runs = r.runs + EXCLUDED.runs,"
        " timed_runs = r.timed_runs + EXCLUDED.timed_runs,"
        " execution_time_sum = r.execution_time_sum + EXCLUDED.execution_time_sum,"
        " notebook_name = coalesce(EXCLUDED.notebook_name, r.notebook_name),"
        f" duration_histogram = {_merge_histograms('r.duration_histogram', 'EXCLUDED.duration_histogram')}"
    )


def ended_results_as_rows(source: str, condition: str = "true") -> str:
    """SQL: the numeric results of the ended runs of ``source`` (runs-shaped rows, ``condition`` on them
    as ``e``), one result-rollup-shaped row each."""
    return f"""
        SELECT date_trunc('day', e.queued_at, 'UTC') AS period_start, e.notebook_id, r.name,
               e.notebook_name, 1 AS results, r.value_numeric AS value_sum, r.value_numeric AS value_min,
               r.value_numeric AS value_max
        FROM {source} AS e JOIN {RESULTS} AS r ON r.execution_id = e.id
        WHERE e.{ENDED_CONDITION} AND r.value_numeric IS NOT NULL AND {condition}
    """


def add_result_rows(table: str, rows: str) -> str:
    """SQL: ``rows`` (result-rollup-shaped, already per day) summed per key and added to ``table``."""
    return (
        f"INSERT INTO {table} AS r ({RESULT_COLUMNS})"
        f" SELECT {RESULT_KEY}, max(notebook_name), sum(results), sum(value_sum), min(value_min),"
        f" max(value_max) FROM ({rows}) AS rows_ GROUP BY {RESULT_KEY}"
        f" ON CONFLICT ({RESULT_KEY}) DO UPDATE SET results = r.results + EXCLUDED.results,"
        " value_sum = r.value_sum + EXCLUDED.value_sum,"
        " value_min = least(r.value_min, EXCLUDED.value_min),"
        " value_max = greatest(r.value_max, EXCLUDED.value_max),"
        " notebook_name = coalesce(EXCLUDED.notebook_name, r.notebook_name)"
    )


# One statement, one round trip at intake: the run in its period of every grain (data-modifying CTEs
# all run to completion), its numbers in its day's result rollups.
_ADD_ENDED_RUN = text(
    f"WITH v AS ({_ENDED_RUN}), "
    + ", ".join(f"added_{i} AS ({_add_one(grain)})" for i, grain in enumerate(GRAINS))
    + f" {add_result_rows(RESULTS_DAILY, ended_results_as_rows(RUNS, 'e.id = :execution_id'))}"
)

# Filling empty rollups from the runs table and the retired totals: hours, then six hours and days from
# the hours, weeks from the days; the results' days.
FILL_HOURLY = add_rows(HOURLY, f"{ended_runs_as_rows(RUNS)} UNION ALL SELECT {COLUMNS} FROM {RETIRED}")
FILL_QUARTER_DAILY = add_rows(QUARTER_DAILY, f"SELECT {COLUMNS} FROM {HOURLY}", QUARTER_DAY)
FILL_DAILY = add_rows(DAILY, f"SELECT {COLUMNS} FROM {HOURLY}", DAY)
FILL_WEEKLY = add_rows(WEEKLY, f"SELECT {COLUMNS} FROM {DAILY}", WEEK)
# Every run rollup from the runs table, in order.
FILL_RUN_ROLLUPS = (
    (HOUR, FILL_HOURLY),
    (QUARTER_DAY, FILL_QUARTER_DAILY),
    (DAY, FILL_DAILY),
    (WEEK, FILL_WEEKLY),
)
FILL_RESULTS_DAILY = add_result_rows(
    RESULTS_DAILY, f"{ended_results_as_rows(RUNS)} UNION ALL SELECT {RESULT_COLUMNS} FROM {RESULTS_RETIRED}"
)


async def rebuild(session: AsyncSession) -> dict[str, int]:
    """Recompute every rollup from the runs table and the retired totals, in one transaction; returns
    the number of rows of each rollup ("hourly", ..., "daily result"). Event intake waits meanwhile
    (seconds per million runs): an event recorded during the rebuild would otherwise be counted twice
    or not at all."""
    fills = [(grain.name, grain.table, fill) for grain, fill in FILL_RUN_ROLLUPS]
    fills.append(("daily result", RESULTS_DAILY, FILL_RESULTS_DAILY))
    await session.execute(text(f"LOCK TABLE {', '.join(t for _, t, _ in fills)} IN EXCLUSIVE MODE"))
    counts = {}
    for name, table, fill in fills:
        await session.execute(text(f"DELETE FROM {table}"))
        counts[name] = cast(CursorResult[Any], await session.execute(text(fill))).rowcount
    await session.commit()
    return counts
