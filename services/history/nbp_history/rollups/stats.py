"""The stats over a window, read from the rollups: whole days from the daily ones, the hours at the
edges from the hourly ones, and the runs not yet ended (which the rollups do not hold) from a partial
index of the runs table. The window is widened to whole hours, the rollups' grain, and answered so."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from nbp_common.errors import Invalid
from nbp_common.events import STATUSES, TERMINAL, ExecutionStatus
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from nbp_history.models import LIVE_CONDITION, Execution
from nbp_history.rollups.histogram import percentile
from nbp_history.rollups.maintain import DAILY, HOURLY
from nbp_history.rollups.schemas import ExecutionStats, NotebookStats

DEFAULT_WINDOW = timedelta(days=7)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
FAILED = (ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT)


def _floor(moment: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + (moment.astimezone(UTC) - epoch) // step * step


def _ceil(moment: datetime, step: timedelta) -> datetime:
    floor = _floor(moment, step)
    return floor if floor == moment else floor + step


def _rollup_rows(columns: str, scope: str) -> str:
    """SQL: ``columns`` of the window's rollup rows (whole days daily, edge hours hourly) within ``scope``."""
    return f"""
        SELECT {columns} FROM {DAILY} WHERE period_start >= :day_from AND period_start < :day_to AND {scope}
        UNION ALL
        SELECT {columns} FROM {HOURLY} WHERE period_start >= :since AND period_start < :day_from AND {scope}
        UNION ALL
        SELECT {columns} FROM {HOURLY} WHERE period_start >= :day_to AND period_start < :until AND {scope}
    """


async def stats(
    session: AsyncSession,
    since: datetime | None,
    until: datetime | None,
    username: str | None = None,
    notebook_id: int | None = None,
    owner: str | None = None,
) -> ExecutionStats:
    until = until or datetime.now(UTC)
    since = since or until - DEFAULT_WINDOW
    if since >= until:
        raise Invalid.field("since", "before_until", "since must be earlier than until")
    try:
        since, until = _floor(since, HOUR), _ceil(until, HOUR)
        day_from, day_to = _ceil(since, DAY), _floor(until, DAY)
    except OverflowError:
        raise Invalid.field("until", "range", "the window must end before the year 9999") from None
    if day_from >= day_to:
        day_from = day_to = until
    window = {"since": since, "until": until, "day_from": day_from, "day_to": day_to}

    conditions, values = ["TRUE"], dict[str, Any](window)
    live = select(Execution.notebook_id, func.max(Execution.notebook_name), Execution.status, func.count())
    live = live.where(text(LIVE_CONDITION), Execution.queued_at >= since, Execution.queued_at < until)
    for name, value in (("username", username), ("owner", owner), ("notebook_id", notebook_id)):
        if value is not None:
            column = "username" if name == "owner" else name
            conditions.append(f"{column} = :{name}")
            values[name] = value
            live = live.where(getattr(Execution, column) == value)
    scope = " AND ".join(conditions)
    counts = _rollup_rows("notebook_id, notebook_name, status, runs", scope)
    completed = ExecutionStatus.COMPLETED.value
    timed = _rollup_rows("notebook_id, duration_histogram", f"{scope} AND status = '{completed}'")

    # One statement: the counts per notebook and status, and the completed runs' duration buckets per
    # notebook (status NULL). Two scans of the window's rollup rows rather than one shared CTE, which
    # PostgreSQL would materialize with every histogram in it, to be read back twice.
    summed = await session.execute(
        text(
            f"SELECT notebook_id, max(notebook_name), status, NULL::int, sum(runs) FROM ({counts}) AS c"
            " GROUP BY 1, 3"
            " UNION ALL"
            " SELECT h_.notebook_id, NULL, NULL, h.key::int, sum(h.value::bigint)"
            f" FROM ({timed}) AS h_ CROSS JOIN LATERAL jsonb_each_text(h_.duration_histogram) AS h"
            " GROUP BY 1, 4"
        ),
        values,
    )
    live_counts = await session.execute(live.group_by(Execution.notebook_id, Execution.status))

    names: dict[int | None, str | None] = {}
    per_status: dict[int | None, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATUSES, 0))
    durations: dict[int | None, dict[int, int]] = defaultdict(dict)
    running = [(nb_id, name, status, None, n) for nb_id, name, status, n in live_counts.all()]
    for nb_id, name, status, bucket, n in [*summed.all(), *running]:
        if status is None:
            durations[nb_id][bucket] = int(n)
        else:
            names[nb_id] = names.get(nb_id) or name
            per_status[nb_id][status] += int(n)

    notebooks = [
        _notebook_stats(nb_id, names[nb_id], by, durations[nb_id]) for nb_id, by in per_status.items()
    ]
    notebooks.sort(key=lambda n: (-n.total, n.notebook_id is None, n.notebook_id or 0))
    by_status = {status: sum(by[status] for by in per_status.values()) for status in STATUSES}
    return ExecutionStats(
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
    return NotebookStats(
        notebook_id=nb_id,
        notebook_name=name,
        total=sum(by_status.values()),
        completed=by_status[ExecutionStatus.COMPLETED],
        failed=sum(by_status[s] for s in FAILED),
        success_rate=_rate(by_status),
        p50_duration_seconds=percentile(durations, 0.50),
        p95_duration_seconds=percentile(durations, 0.95),
    )
