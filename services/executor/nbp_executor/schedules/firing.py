"""Firing: every executor process runs a :class:`Scheduler`; each due fire time is claimed exactly once.

A pass takes the due schedules with ``FOR UPDATE SKIP LOCKED`` (replicas share the work instead of
queueing behind each other) and, for each, in one transaction: inserts the claim row
``(schedule_id, fire_time)`` (``ON CONFLICT DO NOTHING``: a fire time claimed before, by any process,
is never claimed again), queues the run (or records the fire as skipped when ``max_concurrent`` runs of
the schedule are still queued or running) and moves ``next_fire_at`` on. A process killed mid-pass
commits nothing; the next pass of any process does the work.

Missed fire times (no executor was running): with ``catch_up=latest`` the latest of them fires once;
with ``none`` they are skipped, unless the latest is within the misfire grace (a restart just now).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from nbp_common.events import ExecutionStatus
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction, async_sessionmaker

from nbp_executor.intake import workspace
from nbp_executor.models import Job, queued_state
from nbp_executor.queueing import jobs, wakeups
from nbp_executor.queueing.wakeups import Notifications
from nbp_executor.schedules import calendar
from nbp_executor.schedules.models import CatchUp, FireOutcome, Schedule, ScheduleFire
from nbp_executor.schedules.settings import SchedulerSettings
from nbp_executor.settings import ExecutorSettings

logger = logging.getLogger("nbp.executor.schedules")

ACTIVE = (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)


def utcnow() -> datetime:
    return datetime.now(UTC)


def job_values(
    settings: ExecutorSettings, schedule: Schedule, run_id: int, fire_time: datetime | None
) -> dict[str, Any]:
    """The queued job of a run of ``schedule`` (``fire_time`` None: run now)."""
    return {
        "id": run_id,
        "attempt": 1,
        "max_attempts": settings.executor_max_attempts,
        "username": schedule.username,
        "notebook_id": schedule.notebook_id,
        "notebook_name": schedule.notebook_name,
        "input_path": schedule.notebook_path,
        "output_path": workspace.default_output(PurePosixPath(schedule.notebook_path).stem, run_id),
        "parameters": schedule.run_parameters,
        "kernel_name": schedule.kernel_name,
        "timeout_seconds": schedule.timeout_seconds or settings.executor_default_timeout_seconds,
        "cell_timeout_seconds": settings.executor_default_cell_timeout_seconds,
        "tags": [],
        "owner_groups": list(schedule.owner_groups),
        **queued_state(jobs.utcnow()),
        "schedule_id": schedule.id,
        "fire_time": fire_time,
        "retry_max": schedule.retry_max,
        "retry_backoff_seconds": schedule.retry_backoff_seconds,
        "retry_on": list(schedule.retry_on),
    }


async def enqueue(
    session: AsyncSession, settings: ExecutorSettings, schedule: Schedule, fire_time: datetime | None
) -> Job:
    """Queue one run of ``schedule`` in the caller's transaction."""
    run_id = await jobs.next_id(session)
    return await jobs.insert(session, job_values(settings, schedule, run_id, fire_time))


async def active_runs(session: AsyncSession, schedule_ids: list[int]) -> dict[int, int]:
    """Runs queued or running, per schedule."""
    rows = await session.execute(
        select(Job.schedule_id, func.count())
        .where(Job.schedule_id.in_(schedule_ids), Job.status.in_(ACTIVE))
        .group_by(Job.schedule_id)
    )
    return {int(schedule_id or 0): int(n) for schedule_id, n in rows.all()}


def first_fire(schedule: Schedule, after: datetime) -> datetime | None:
    return calendar.next_fire(schedule.cron, calendar.zone(schedule.timezone), after)


def due_fire(schedule: Schedule, now: datetime, grace: timedelta) -> tuple[datetime | None, datetime]:
    """The fire time to claim now (None: the due ones were missed and are skipped), and the latest due
    fire time, after which ``next_fire_at`` moves on."""
    assert schedule.next_fire_at is not None
    due = schedule.next_fire_at
    tz = calendar.zone(schedule.timezone)
    latest = calendar.latest_at_or_before(schedule.cron, tz, due, now) or due
    if now - latest <= grace:
        return latest, latest
    if schedule.catch_up == CatchUp.LATEST:
        return latest, latest
    return None, latest


async def claim(
    session: AsyncSession,
    settings: ExecutorSettings,
    scheduler: SchedulerSettings,
    now: datetime,
    fire_time: datetime | None = None,
) -> list[int]:
    """In the caller's transaction: lock up to a batch of the schedules due at ``now`` (or, given
    ``fire_time``, those due exactly then, claimed ahead of it: nothing shows until the commit) and
    claim each one's fire time: queue its run, or record the fire skipped (``max_concurrent``); a fire
    time claimed before (by any process) is left alone; ``next_fire_at`` moves on. Set-based: a few
    bulk statements a batch. The ids of the schedules handled."""
    at = now if fire_time is None else max(now, fire_time)
    schedules = (
        await session.scalars(
            select(Schedule)
            .where(
                Schedule.enabled,
                Schedule.next_fire_at <= now if fire_time is None else Schedule.next_fire_at == fire_time,
            )
            .order_by(Schedule.next_fire_at)
            .limit(scheduler.batch)
            .with_for_update(skip_locked=True)
        )
    ).all()
    grace = timedelta(seconds=scheduler.misfire_grace_seconds)
    due: list[tuple[Schedule, datetime]] = []
    for schedule in schedules:
        fire, latest = due_fire(schedule, at, grace)
        if fire is None:
            logger.warning(
                "schedule %s: fire times from %s to %s missed (catch_up none), skipped",
                schedule.id,
                schedule.next_fire_at,
                latest,
            )
        else:
            due.append((schedule, fire))
        schedule.next_fire_at = first_fire(schedule, latest)
    if due:
        await _claim(session, settings, due, at)
    return [s.id for s in schedules]


async def _claim(
    session: AsyncSession, settings: ExecutorSettings, due: list[tuple[Schedule, datetime]], at: datetime
) -> None:
    running = await active_runs(session, [s.id for s, _ in due])
    claims: list[dict[str, Any]] = []
    runs: dict[int, jobs.NewJob] = {}
    ids = iter(await jobs.next_ids(session, len(due)))
    for schedule, fire_time in due:
        active = running.get(schedule.id, 0)
        claim_row = {"schedule_id": schedule.id, "fire_time": fire_time}
        if active >= schedule.max_concurrent:
            reason = (
                f"{active} run(s) of this schedule still queued or running (max_concurrent "
                f"{schedule.max_concurrent}, overlap {schedule.overlap})"
            )
            claims.append(
                {**claim_row, "outcome": FireOutcome.SKIPPED.value, "job_id": None, "reason": reason}
            )
            continue
        values = {**job_values(settings, schedule, next(ids), fire_time), "queued_at": at}
        run = runs[schedule.id] = jobs.new_job(values, at)
        claims.append({**claim_row, "outcome": FireOutcome.QUEUED.value, "job_id": run.id, "reason": None})
    won = set(
        (
            await session.scalars(
                insert(ScheduleFire)
                .on_conflict_do_nothing(index_elements=["schedule_id", "fire_time"])
                .returning(ScheduleFire.schedule_id),
                claims,
            )
        ).all()
    )
    for schedule, fire_time in due:
        if schedule.id not in won:
            logger.info("schedule %s: fire time %s was already claimed", schedule.id, fire_time)
    await jobs.insert_many(session, [run for schedule_id, run in runs.items() if schedule_id in won])


async def fire_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: ExecutorSettings,
    scheduler: SchedulerSettings,
    now: datetime,
) -> int:
    """One batch of due schedules fired (as of ``now``); the number of schedules handled."""
    async with sessionmaker() as session, session.begin():
        return len(await claim(session, settings, scheduler, now))


async def fire_at(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: ExecutorSettings,
    scheduler: SchedulerSettings,
    fire_time: datetime,
) -> int:
    """The schedules due at ``fire_time`` (still ahead), claimed now in up to ``batches_ahead``
    transactions left open, which commit side by side at ``fire_time``: the fires then cost a commit,
    however many share the instant. The number handled."""
    async with contextlib.AsyncExitStack() as stack:
        batches: list[tuple[AsyncSession, AsyncSessionTransaction, list[int]]] = []
        while len(batches) < scheduler.batches_ahead:
            session = await stack.enter_async_context(sessionmaker())
            transaction = await session.begin()
            handled = await claim(session, settings, scheduler, utcnow(), fire_time)
            await session.flush()
            batches.append((session, transaction, handled))
            if len(handled) < scheduler.batch:
                break
        await asyncio.sleep(max(0.0, (fire_time - utcnow()).total_seconds()))

        async def commit(
            session: AsyncSession, transaction: AsyncSessionTransaction, handled: list[int]
        ) -> None:
            if handled:  # the claims' time is the commit's, not the preparation's
                await session.execute(
                    update(ScheduleFire)
                    .where(ScheduleFire.fire_time == fire_time, ScheduleFire.schedule_id.in_(handled))
                    .values(fired_at=func.clock_timestamp())
                )
            await transaction.commit()

        await asyncio.gather(*(commit(*batch) for batch in batches))
        return sum(len(handled) for _, _, handled in batches)


async def next_fire_time(sessionmaker: async_sessionmaker[AsyncSession]) -> datetime | None:
    async with sessionmaker() as session:
        return await session.scalar(select(func.min(Schedule.next_fire_at)).where(Schedule.enabled))


class Scheduler:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: ExecutorSettings,
        scheduler: SchedulerSettings,
        notifications: Notifications,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.scheduler = scheduler
        self.notifications = notifications

    async def run(self) -> None:
        signal = self.notifications[wakeups.SCHEDULES]
        while True:
            ticket = signal.ticket()
            try:
                delay = await self.pass_once()
            except Exception:
                logger.exception("scheduler pass failed")
                delay = self.scheduler.poll_seconds
            if delay > 0:
                await signal.wait(ticket, delay)

    async def pass_once(self) -> float:
        """Fire what is due; prepare what falls due within the lead time and claim it at its fire
        time. How long to sleep before the next pass (0: at once)."""
        scheduler = self.scheduler
        if await fire_due(self.sessionmaker, self.settings, scheduler, utcnow()) >= scheduler.batch:
            return 0.0
        soonest = await next_fire_time(self.sessionmaker)
        if soonest is None:
            return scheduler.poll_seconds
        ahead = (soonest - utcnow()).total_seconds()
        if ahead > scheduler.lead_seconds:
            return min(scheduler.poll_seconds, ahead - scheduler.lead_seconds)
        if await fire_at(self.sessionmaker, self.settings, scheduler, soonest):
            return 0.0
        # Another replica holds them until its commit at the fire time: look again a moment later.
        return min(scheduler.poll_seconds, 0.1)
