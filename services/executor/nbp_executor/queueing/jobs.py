"""The queue's transitions. Each one changes the job row and writes its outbox event (the whole run as
the executor knows it, an ``ExecutionEvent``) in one transaction, and notifies whoever waits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from nbp_common.events import TERMINAL, ExecutionEvent, ExecutionStatus, RunRecord
from sqlalchemy import Table, func, or_, select, text, update
from sqlalchemy import insert as sql_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from nbp_executor.models import Job, OutboxEvent
from nbp_executor.notifications import outbox as notifications
from nbp_executor.queueing import wakeups
from nbp_executor.retries import policy as retries
from nbp_executor.runners.papermill_run import Outcome, Progress

EXECUTOR_LOST = "executor lost: the worker running this run stopped renewing its lease"


def utcnow() -> datetime:
    return datetime.now(UTC)


_JOB_COLUMNS = frozenset(Job.__table__.columns.keys())
# The run record's fields a job holds under another name (the others have the same name in both).
_JOB_NAMES = {"parameters_used": "parameters"}


def job_field(job: Job, name: str) -> Any:
    """The job's value of a run-record field (or of its own column), by the record's name."""
    return getattr(job, _JOB_NAMES.get(name, name))


def run_record(job: Job) -> dict[str, Any]:
    """The job's fields of the shared run record (``RunRecord``), by the record's names."""
    duration = None
    if job.started_at is not None and job.completed_at is not None:
        duration = max(0.0, (job.completed_at - job.started_at).total_seconds())
    return {
        **{
            name: job_field(job, name)
            for name in RunRecord.model_fields
            if _JOB_NAMES.get(name, name) in _JOB_COLUMNS
        },
        "execution_time_seconds": duration,
    }


def event_of(job: Job, occurred_at: datetime | None = None) -> ExecutionEvent:
    return ExecutionEvent.model_validate(
        {
            **run_record(job),
            "event_id": uuid.uuid4(),
            "execution_id": job.id,
            "occurred_at": occurred_at or utcnow(),
            "error": job.error,
            "results": job.results,
        }
    )


async def notify(session: AsyncSession, channel: str, payload: str = "") -> None:
    await session.execute(text("SELECT pg_notify(:c, :p)"), {"c": channel, "p": payload})


async def record_transition(session: AsyncSession, job: Job) -> None:
    """The outbox row of ``job``'s current state, and the notifications (sent at commit)."""
    await session.flush()
    event = event_of(job)
    session.add(OutboxEvent(event_id=event.event_id, job_id=job.id, payload=event.model_dump(mode="json")))
    await notify(session, wakeups.OUTBOX)
    if job.status in TERMINAL:
        await notify(session, wakeups.ENDED, str(job.id))
        # A failure that is retried is not notified: its last attempt is.
        if not await _retry(session, job):
            await notifications.on_run_ended(session, job)
    elif job.status == ExecutionStatus.QUEUED:
        await notify(session, wakeups.JOBS)


async def _retry(session: AsyncSession, job: Job) -> bool:
    """Queue the next attempt of ``job`` if its retry policy asks for one (in this transaction)."""
    values = retries.next_attempt(job, utcnow())
    if values is None:
        return False
    run_id = await next_id(session)
    await insert(session, {**values, "id": run_id, "output_path": retries.output_for(job, run_id)})
    return True


async def claim(sessionmaker: async_sessionmaker[AsyncSession], worker: str, lease: float) -> Job | None:
    """The oldest queued job, now running under ``worker``'s lease; None when the queue is empty."""
    async with sessionmaker() as session, session.begin():
        job = await session.scalar(
            select(Job)
            .where(
                Job.status == ExecutionStatus.QUEUED,
                or_(Job.not_before.is_(None), Job.not_before <= func.now()),
            )
            .order_by(Job.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if job is None:
            return None
        job.status = ExecutionStatus.RUNNING
        job.worker = worker
        job.lease_owner = worker
        job.started_at = utcnow()
        job.cells_done = 0
        job.current_cell = None
        await session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(lease_expires_at=func.now() + timedelta(seconds=lease), heartbeat_at=func.now())
        )
        await record_transition(session, job)
        return job


async def seconds_to_claimable(sessionmaker: async_sessionmaker[AsyncSession]) -> float | None:
    """How long until the soonest queued job held back by ``not_before`` (a retry's backoff) may be
    claimed; None when none is waiting."""
    async with sessionmaker() as session:
        seconds = await session.scalar(
            select(func.extract("epoch", func.min(Job.not_before) - func.now())).where(
                Job.status == ExecutionStatus.QUEUED, Job.not_before.is_not(None)
            )
        )
    return None if seconds is None else max(0.0, float(seconds))


async def heartbeat(
    sessionmaker: async_sessionmaker[AsyncSession],
    job_id: int,
    worker: str,
    lease: float,
    progress: Progress,
) -> bool | None:
    """Renew the lease and store the progress. Returns whether a cancel was asked; None: lease lost."""
    async with sessionmaker() as session, session.begin():
        row = await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == ExecutionStatus.RUNNING, Job.lease_owner == worker)
            .values(
                lease_expires_at=func.now() + timedelta(seconds=lease),
                heartbeat_at=func.now(),
                cells_done=progress.cells_done,
                cells_total=progress.cells_total,
                current_cell=progress.current_cell,
            )
            .returning(Job.cancel_requested)
        )
        found = row.scalar_one_or_none()
        return None if found is None else bool(found)


async def finish(
    sessionmaker: async_sessionmaker[AsyncSession],
    job_id: int,
    worker: str,
    outcome: Outcome,
    progress: Progress | None,
) -> bool:
    """Record how the run ended, unless the lease was lost meanwhile (then another owns the job)."""
    async with sessionmaker() as session, session.begin():
        job = await session.get(Job, job_id, with_for_update=True)
        if job is None or job.status != ExecutionStatus.RUNNING or job.lease_owner != worker:
            return False
        job.status = outcome.status
        job.completed_at = utcnow()
        job.lease_owner = None
        job.lease_expires_at = None
        job.error_message = outcome.error_message
        job.error = outcome.error.model_dump(exclude_none=True) if outcome.error else None
        job.results = [r.model_dump(mode="json") for r in outcome.results]
        if outcome.input_sha256 is not None:
            job.input_sha256 = outcome.input_sha256  # what ran, should the file have changed since submit
        if progress is not None:
            job.cells_done = progress.cells_done
            job.cells_total = progress.cells_total
            job.current_cell = progress.last_cell if outcome.status != ExecutionStatus.COMPLETED else None
        await record_transition(session, job)
        return True


async def release(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: int, worker: str, reason: str
) -> None:
    """Give a running job back (this process is stopping): retried if attempts are left, else failed."""
    async with sessionmaker() as session, session.begin():
        job = await session.get(Job, job_id, with_for_update=True)
        if job is None or job.status != ExecutionStatus.RUNNING or job.lease_owner != worker:
            return
        requeue_or_fail(job, reason)
        await record_transition(session, job)


async def hand_over(sessionmaker: async_sessionmaker[AsyncSession], job_id: int, worker: str) -> None:
    """Let a running job's lease expire now, the run going on elsewhere (its pod): the next reaper, of
    this executor's successor or of another replica, takes it over (``take_over``)."""
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == ExecutionStatus.RUNNING, Job.lease_owner == worker)
            .values(lease_expires_at=func.now())
        )


async def take_over(
    sessionmaker: async_sessionmaker[AsyncSession], runs: dict[int, int], worker: str, lease: float
) -> list[Job]:
    """Running jobs among ``runs`` (id -> the attempt whose pod still exists) whose lease expired: now
    ``worker``'s, to follow their pods. The others stay for ``reap``."""
    if not runs:
        return []
    async with sessionmaker() as session, session.begin():
        found = (
            await session.scalars(
                select(Job)
                .where(
                    Job.id.in_(list(runs)),
                    Job.status == ExecutionStatus.RUNNING,
                    Job.lease_expires_at < func.now(),
                )
                .with_for_update(skip_locked=True)
            )
        ).all()
        taken = [job for job in found if runs[job.id] == job.attempt]
        for job in taken:
            job.lease_owner = worker
            job.worker = worker
            await session.execute(
                update(Job)
                .where(Job.id == job.id)
                .values(lease_expires_at=func.now() + timedelta(seconds=lease), heartbeat_at=func.now())
            )
        return list(taken)


async def live_attempts(sessionmaker: async_sessionmaker[AsyncSession], run_ids: list[int]) -> dict[int, int]:
    """Of ``run_ids``, the running ones and their attempt (a pod of any other run or attempt is stale)."""
    if not run_ids:
        return {}
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Job.id, Job.attempt).where(Job.id.in_(run_ids), Job.status == ExecutionStatus.RUNNING)
        )
        return {int(run_id): int(attempt) for run_id, attempt in rows.all()}


def requeue_or_fail(job: Job, reason: str) -> None:
    """The rule for a run whose executor stopped: cancelled if asked, retried while attempts are left,
    else failed with ``reason``."""
    job.lease_owner = None
    job.lease_expires_at = None
    if job.cancel_requested:
        job.status = ExecutionStatus.CANCELLED
        job.completed_at = utcnow()
        job.error_message = "cancelled (the executor running it stopped)"
    elif job.attempt < job.max_attempts:
        job.status = ExecutionStatus.QUEUED
        job.attempt += 1
        job.started_at = None
        job.worker = None
        job.cells_done = 0
        job.current_cell = None
    else:
        job.status = ExecutionStatus.FAILED
        job.completed_at = utcnow()
        job.error_message = reason


async def reap(sessionmaker: async_sessionmaker[AsyncSession], limit: int = 100) -> int:
    """Running jobs whose lease expired (their executor died): retried, or failed "executor lost"."""
    async with sessionmaker() as session, session.begin():
        jobs = (
            await session.scalars(
                select(Job)
                .where(Job.status == ExecutionStatus.RUNNING, Job.lease_expires_at < func.now())
                .order_by(Job.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for job in jobs:
            requeue_or_fail(job, EXECUTOR_LOST)
            await record_transition(session, job)
        return len(jobs)


async def insert(session: AsyncSession, values: dict[str, Any]) -> Job:
    """A new queued job (in the caller's transaction), its id taken first to name its output."""
    job = Job(**values)
    session.add(job)
    await record_transition(session, job)
    return job


@dataclass(frozen=True)
class NewJob:
    """A queued job's row and its outbox row, built before the transaction that writes them."""

    values: dict[str, Any]
    outbox: dict[str, Any]

    @property
    def id(self) -> int:
        return int(self.values["id"])


def new_job(values: dict[str, Any], at: datetime) -> NewJob:
    """The rows ``insert`` would write for ``values`` (id taken), the event as of ``at``."""
    event = event_of(Job(**values), at)
    return NewJob(
        values,
        {"event_id": event.event_id, "job_id": event.execution_id, "payload": event.model_dump(mode="json")},
    )


async def insert_many(session: AsyncSession, new: list[NewJob]) -> None:
    """New queued jobs with their outbox rows: two bulk statements (the scheduler's batch), the same
    rows ``insert`` writes one at a time."""
    if not new:
        return
    await session.execute(sql_insert(cast(Table, Job.__table__)), [n.values for n in new])
    await session.execute(sql_insert(cast(Table, OutboxEvent.__table__)), [n.outbox for n in new])
    await notify(session, wakeups.OUTBOX)
    await notify(session, wakeups.JOBS)


async def next_ids(session: AsyncSession, count: int) -> list[int]:
    rows = await session.scalars(
        text("SELECT nextval(pg_get_serial_sequence('executor.jobs', 'id')) FROM generate_series(1, :n)"),
        {"n": count},
    )
    return [int(v) for v in rows]


async def next_id(session: AsyncSession) -> int:
    value = await session.scalar(text("SELECT nextval(pg_get_serial_sequence('executor.jobs', 'id'))"))
    return int(value)
