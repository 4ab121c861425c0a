"""The stats over a window, read from the rollups: the window as whole weeks, days, six hours and hours,
the fewest rollup rows that sum to it (a month is about ten per notebook and status, where its days and
edge hours would be fifty), and the runs not yet ended (which the rollups do not hold) from a partial
index of the runs table. The window is widened to whole hours, the finest grain, and answered so."""

from __future__ import annotations

import contextlib
import functools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from nbp_common.db import Database
from nbp_common.errors import Invalid
from nbp_common.events import STATUSES, TERMINAL, ExecutionStatus

from nbp_history.models import LIVE_CONDITION
from nbp_history.rollups.histogram import percentiles
from nbp_history.rollups.maintain import GRAINS, HOUR, RUNS, Grain
from nbp_history.rollups.schemas import ExecutionStats, NotebookStats

DEFAULT_WINDOW = timedelta(days=7)
FAILED = (ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT)
# Periods of a grain from start to end, added (1) or taken away (-1).
Periods = tuple[tuple[Grain, datetime, datetime, int], ...]


def rows(periods: Periods) -> int:
    """Rollup rows read per notebook, user and status."""
    return sum((end - start) // grain.length for grain, start, end, _ in periods)


# A window's cover is the same for an hour (until defaults to now, widened to the hour): kept, a few.
@functools.lru_cache(maxsize=64)
def cover(since: datetime, until: datetime) -> Periods:
    """``[since, until)`` (whole hours) as the fewest whole periods: those of the coarsest grains inside
    it, or a coarser period reaching past an edge with what lies beyond the edge taken away (the first
    six hours of a day and the day's other eighteen are two rows, not eighteen). Exact, as every grain's
    periods are sums of the finer grains' periods."""
    known: dict[tuple[datetime, datetime, int], Periods] = {}

    def shifted(a: datetime, b: datetime, level: int, sign: int) -> Periods:
        if a == b:
            return ()
        return tuple((grain, start, end, sign * s) for grain, start, end, s in best(a, b, level))

    def best(a: datetime, b: datetime, level: int) -> Periods:
        if level == 0:
            return ((HOUR, a, b, 1),)
        if (a, b, level) not in known:
            grain, candidates = GRAINS[level], [best(a, b, level - 1)]
            for start in _aligned(grain, a):
                for end in _aligned(grain, b):
                    if start < end:
                        before = (
                            shifted(a, start, level - 1, 1) if a < start else shifted(start, a, level - 1, -1)
                        )
                        after = shifted(end, b, level - 1, 1) if end < b else shifted(b, end, level - 1, -1)
                        candidates.append((*before, (grain, start, end, 1), *after))
            known[a, b, level] = min(candidates, key=rows)
        return known[a, b, level]

    return best(since, until, len(GRAINS) - 1)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _aligned(grain: Grain, moment: datetime) -> set[datetime]:
    """The starts of ``grain``'s periods at or next to ``moment`` (none past the calendar's end)."""
    found = {grain.floor(moment)}
    with contextlib.suppress(OverflowError):
        found.add(grain.ceil(moment))
    return found


async def stats(
    database: Database,
    since: datetime | None,
    until: datetime | None,
    username: str | None = None,
    notebook_id: int | None = None,
    owner: str | None = None,
) -> ExecutionStats:
    # A time without a zone is UTC, as in the list filters (asyncpg sends a naive datetime so).
    until = _utc(until) if until is not None else datetime.now(UTC)
    try:
        since = _utc(since) if since is not None else until - DEFAULT_WINDOW
    except OverflowError:
        raise Invalid.field(
            "until",
            "range",
            f"without since, the {DEFAULT_WINDOW.days} days before until must be after the year 1",
        ) from None
    if since >= until:
        raise Invalid.field("since", "before_until", "since must be earlier than until")
    try:
        since, until = HOUR.floor(since), HOUR.ceil(until)
        periods = cover(since, until)
    except OverflowError:
        raise Invalid.field("until", "range", "the window must end before the year 9999") from None

    values: list[Any] = []

    def bind(value: Any) -> str:
        values.append(value)
        return f"${len(values)}"

    conditions = ["TRUE"]
    for column, value in (("username", username), ("username", owner), ("notebook_id", notebook_id)):
        if value is not None:
            conditions.append(f"{column} = {bind(value)}")
    scope = " AND ".join(conditions)
    ranges = [(grain.table, bind(start), bind(end), sign) for grain, start, end, sign in periods]

    def rollup_rows(columns: str, where: str) -> str:
        return " UNION ALL ".join(
            f"SELECT {columns.format(sign=sign)} FROM {table}"
            f" WHERE period_start >= {start} AND period_start < {end} AND {where}"
            for table, start, end, sign in ranges
        )

    live = (
        f"SELECT notebook_id, notebook_name, status, 1 AS runs FROM {RUNS} WHERE {LIVE_CONDITION}"
        f" AND queued_at >= {bind(since)} AND queued_at < {bind(until)} AND {scope}"
    )
    counts = rollup_rows("notebook_id, notebook_name, status, {sign} * runs AS runs", scope)
    completed = ExecutionStatus.COMPLETED.value
    timed = rollup_rows(
        "notebook_id, {sign} AS sign, duration_histogram", f"{scope} AND status = '{completed}'"
    )
    # One statement: the counts per notebook and status (the ended runs' from the rollups, the others'
    # from the runs table), and the completed runs' duration buckets per notebook (status NULL). Two
    # scans of the window's rollup rows rather than one shared CTE, which PostgreSQL would materialize
    # with every histogram in it, to be read back twice.
    sql = (
        f"SELECT notebook_id, max(notebook_name), status, NULL::int, sum(runs)::bigint FROM ({counts}"
        f" UNION ALL {live}) AS c GROUP BY 1, 3"
        " UNION ALL"
        " SELECT h_.notebook_id, NULL, NULL, h.key::int, sum(h_.sign * h.value::bigint)::bigint"
        f" FROM ({timed}) AS h_ CROSS JOIN LATERAL jsonb_each_text(h_.duration_histogram) AS h"
        " GROUP BY 1, 4"
    )
    async with database.driver_connection() as connection:
        summed = await connection.fetch(sql, *values)

    names: dict[int | None, str | None] = {}
    per_status: dict[int | None, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATUSES, 0))
    durations: dict[int | None, dict[int, int]] = defaultdict(dict)
    for nb_id, name, status, bucket, n in summed:
        if status is None:
            durations[nb_id][bucket] = int(n)
        else:
            names[nb_id] = names.get(nb_id) or name
            per_status[nb_id][status] += int(n)

    # A notebook whose runs all lie in what was taken away sums to none.
    notebooks = [
        _notebook_stats(nb_id, names[nb_id], by, durations[nb_id])
        for nb_id, by in per_status.items()
        if any(by.values())
    ]
    notebooks.sort(key=lambda n: (-n.total, n.notebook_id is None, n.notebook_id or 0))
    by_status = {status: sum(by[status] for by in per_status.values()) for status in STATUSES}
    # Built from values of the right types by construction: validating them again would cost more than
    # computing them.
    return ExecutionStats.model_construct(
        since=since,
        until=until,
        total=sum(by_status.values()),
        by_status=by_status,
        success_rate=_rate(by_status),
        notebooks=notebooks,
    )


def _rate(by_status: dict[str, int]) -> float | None:
    finished = sum(by_status[s] for s in TERMINAL)
    return by_status[ExecutionStatus.COMPLETED] / finished if finished else None


def _notebook_stats(
    nb_id: int | None, name: str | None, by_status: dict[str, int], durations: dict[int, int]
) -> NotebookStats:
    p50, p95 = percentiles(durations, (0.50, 0.95))
    return NotebookStats.model_construct(
        notebook_id=nb_id,
        notebook_name=name,
        total=sum(by_status.values()),
        completed=by_status[ExecutionStatus.COMPLETED],
        failed=sum(by_status[s] for s in FAILED),
        success_rate=_rate(by_status),
        p50_duration_seconds=p50,
        p95_duration_seconds=p95,
    )
