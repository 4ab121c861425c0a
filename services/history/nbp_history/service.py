"""The history's operations: recording lifecycle events, and the queries over the record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from nbp_common.api import Page
from nbp_common.errors import Invalid, NotFound
from nbp_common.events import (
    STATUSES,
    TERMINAL,
    ErrorDetails,
    ExecutionEvent,
    ExecutionStatus,
    RunRecord,
    lifecycle_rank,
)
from sqlalchemy import Select, case, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from nbp_history.models import Execution, ExecutionResult, ProcessedEvent
from nbp_history.schemas import ExecutionRecordDetail, ExecutionStats, NotebookStats, ResultOut

Outcome = Literal["applied", "stale", "duplicate"]

# Every field of the record an event carries besides its state, in the columns of the same names.
_SNAPSHOT_FIELDS = tuple(name for name in RunRecord.model_fields if name not in ("status", "attempt"))
_ERROR_COLUMNS = {
    "cell_index": "error_cell_index",
    "cell_source": "error_cell_source",
    "ename": "error_ename",
    "evalue": "error_evalue",
    "traceback": "error_traceback",
}


@dataclass(frozen=True)
class ExecutionFilters:
    # Narrows everything to one user's runs (a non-admin caller's own); None for everyone's.
    owner: str | None = None
    username: str | None = None
    notebook_id: int | None = None
    status: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None


def _supersedes(event: ExecutionEvent, record: Execution) -> bool:
    """A terminal state is final; otherwise a later attempt, or a later state of the same attempt, wins."""
    if record.status in TERMINAL:
        return False
    return (event.attempt, lifecycle_rank(event.status)) >= (record.attempt, lifecycle_rank(record.status))


async def record_event(session: AsyncSession, event: ExecutionEvent) -> Outcome:
    """Apply one lifecycle event, exactly once, whatever order events arrive in."""
    # Events of one run are applied one at a time; other runs' events go on in parallel.
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": event.execution_id})
    first_time = await session.scalar(
        insert(ProcessedEvent)
        .values(
            event_id=event.event_id, execution_id=event.execution_id, status=event.status, outcome="applied"
        )
        .on_conflict_do_nothing()
        .returning(ProcessedEvent.event_id)
    )
    if first_time is None:
        await session.rollback()
        return "duplicate"

    record = await session.get(Execution, event.execution_id, with_for_update=True)
    if record is not None and not _supersedes(event, record):
        await session.execute(
            update(ProcessedEvent).where(ProcessedEvent.event_id == event.event_id).values(outcome="stale")
        )
        await session.commit()
        return "stale"

    new_attempt = record is not None and event.attempt > record.attempt
    if record is None:
        record = Execution(id=event.execution_id)
        session.add(record)
    record.status = event.status
    record.attempt = event.attempt
    for name in _SNAPSHOT_FIELDS:
        value = getattr(event, name)
        # A snapshot never erases what an earlier one established (a start time, say); a new attempt does.
        if value is not None or new_attempt:
            setattr(record, name, value)
    error = event.error.model_dump() if event.error else {}
    for key, column in _ERROR_COLUMNS.items():
        setattr(record, column, error.get(key))
    await session.flush()
    if event.results:
        rows = [
            {
                "execution_id": event.execution_id,
                "name": result.name,
                "value_numeric": result.value_numeric,
                "value_json": result.value_json,
            }
            for result in event.results
        ]
        statement = insert(ExecutionResult).values(rows)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["execution_id", "name"],
                set_={
                    "value_numeric": statement.excluded.value_numeric,
                    "value_json": statement.excluded.value_json,
                },
            )
        )
    await session.commit()
    return "applied"


def _filtered(query: Select[Any], filters: ExecutionFilters) -> Select[Any]:
    if filters.owner is not None:
        query = query.where(Execution.username == filters.owner)
    if filters.username is not None:
        query = query.where(Execution.username == filters.username)
    if filters.notebook_id is not None:
        query = query.where(Execution.notebook_id == filters.notebook_id)
    if filters.status is not None:
        query = query.where(Execution.status == filters.status)
    if filters.started_after is not None:
        query = query.where(Execution.started_at >= filters.started_after)
    if filters.started_before is not None:
        query = query.where(Execution.started_at < filters.started_before)
    return query


async def list_executions(
    session: AsyncSession, page: Page, filters: ExecutionFilters
) -> tuple[int, Sequence[Execution]]:
    total = await session.scalar(_filtered(select(func.count(Execution.id)), filters))
    rows = await session.scalars(
        _filtered(select(Execution), filters)
        .order_by(Execution.queued_at.desc().nulls_last(), Execution.id.desc())
        .limit(page.limit)
        .offset(page.offset)
    )
    return total or 0, rows.all()


async def get_execution(session: AsyncSession, execution_id: int, owner: str | None) -> ExecutionRecordDetail:
    """A run with its error and results; another user's run (``owner`` set) as if it did not exist."""
    record = await session.scalar(
        select(Execution).where(Execution.id == execution_id).options(selectinload(Execution.results))
    )
    if record is None or (owner is not None and record.username != owner):
        raise NotFound(f"execution {execution_id} does not exist")
    error_values = {key: getattr(record, column) for key, column in _ERROR_COLUMNS.items()}
    return ExecutionRecordDetail.model_validate(
        {
            **{c.key: getattr(record, c.key) for c in Execution.__table__.columns},
            "error": ErrorDetails(**error_values)
            if any(v is not None for v in error_values.values())
            else None,
            "results": [ResultOut.model_validate(r) for r in record.results],
        }
    )


async def list_results(
    session: AsyncSession, execution_id: int, owner: str | None
) -> Sequence[ExecutionResult]:
    record = await session.get(Execution, execution_id)
    if record is None or (owner is not None and record.username != owner):
        raise NotFound(f"execution {execution_id} does not exist")
    rows = await session.scalars(
        select(ExecutionResult)
        .where(ExecutionResult.execution_id == execution_id)
        .order_by(ExecutionResult.id)
    )
    return rows.all()


DEFAULT_WINDOW = timedelta(days=7)


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
    when = func.coalesce(Execution.queued_at, Execution.started_at, Execution.created_at)
    scope = [when >= since, when < until]
    if username is not None:
        scope.append(Execution.username == username)
    if owner is not None:
        scope.append(Execution.username == owner)
    if notebook_id is not None:
        scope.append(Execution.notebook_id == notebook_id)

    counts = dict(
        (
            await session.execute(
                select(Execution.status, func.count()).where(*scope).group_by(Execution.status)
            )
        ).all()
    )
    by_status = {status: int(counts.get(status, 0)) for status in STATUSES}
    finished = sum(by_status[s] for s in TERMINAL)

    completed = func.count().filter(Execution.status == ExecutionStatus.COMPLETED)
    failed = func.count().filter(Execution.status.in_((ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT)))
    finished_count = func.count().filter(Execution.status.in_(tuple(TERMINAL)))
    done_duration = case((Execution.status == ExecutionStatus.COMPLETED, Execution.execution_time_seconds))
    per_notebook = await session.execute(
        select(
            Execution.notebook_id,
            func.max(Execution.notebook_name),
            func.count(),
            completed,
            failed,
            finished_count,
            func.percentile_cont(0.5).within_group(done_duration),
            func.percentile_cont(0.95).within_group(done_duration),
        )
        .where(*scope)
        .group_by(Execution.notebook_id)
        .order_by(func.count().desc(), Execution.notebook_id)
    )
    notebooks = [
        NotebookStats(
            notebook_id=nb_id,
            notebook_name=name,
            total=total,
            completed=ok,
            failed=bad,
            success_rate=(ok / done) if done else None,
            p50_duration_seconds=p50,
            p95_duration_seconds=p95,
        )
        for nb_id, name, total, ok, bad, done, p50, p95 in per_notebook
    ]
    return ExecutionStats(
        since=since,
        until=until,
        total=sum(by_status.values()),
        by_status=by_status,
        success_rate=(by_status[ExecutionStatus.COMPLETED] / finished) if finished else None,
        notebooks=notebooks,
    )
