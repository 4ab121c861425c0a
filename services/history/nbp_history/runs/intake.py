"""Recording the executor's lifecycle events: each applied exactly once, in whatever order they come."""

from __future__ import annotations

from typing import Literal

from nbp_common.events import TERMINAL, ExecutionEvent, RunRecord, lifecycle_rank
from sqlalchemy import text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from nbp_history.models import Execution, ExecutionResult, ProcessedEvent
from nbp_history.rollups.maintain import add_ended_run

Outcome = Literal["applied", "stale", "duplicate"]

# Every field of the record an event carries besides its state, in the columns of the same names.
_SNAPSHOT_FIELDS = tuple(name for name in RunRecord.model_fields if name not in ("status", "attempt"))
ERROR_COLUMNS = {
    "cell_index": "error_cell_index",
    "cell_source": "error_cell_source",
    "ename": "error_ename",
    "evalue": "error_evalue",
    "traceback": "error_traceback",
}


def _supersedes(event: ExecutionEvent, record: Execution) -> bool:
    """A terminal state is final; otherwise a later attempt, or a later state of the same attempt, wins."""
    if record.status in TERMINAL:
        return False
    return (event.attempt, lifecycle_rank(event.status)) >= (record.attempt, lifecycle_rank(record.status))


async def record_event(session: AsyncSession, event: ExecutionEvent) -> Outcome:
    """Apply one lifecycle event, exactly once, whatever order events arrive in; a run that ends is
    added to the rollups in the same transaction."""
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
    # Every record has its place in the lists; a start never precedes the queueing (a worker's clock
    # may lag the database's, which stamped the queueing).
    record.queued_at = record.queued_at or record.started_at or event.occurred_at
    if record.started_at is not None and record.started_at < record.queued_at:
        record.queued_at = record.started_at
    error = event.error.model_dump() if event.error else {}
    for key, column in ERROR_COLUMNS.items():
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
    if record.status in TERMINAL:
        await add_ended_run(session, record)
    await session.commit()
    return "applied"
