"""What a run's ending writes to the notification outbox, in the transaction that records the ending
(called by the queue's transitions; imports nothing of the service layer)."""

from __future__ import annotations

from typing import Any

from nbp_common.events import ExecutionStatus
from sqlalchemy import or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from nbp_executor.models import Job
from nbp_executor.notifications.models import NotificationDelivery, NotificationRule, Trigger
from nbp_executor.notifications.settings import NotifySettings
from nbp_executor.queueing.wakeups import NOTIFICATIONS

FAILED = frozenset({ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT})
ENDED = frozenset({ExecutionStatus.COMPLETED, *FAILED})  # a cancelled run neither fails nor recovers anything


async def _previous_failed(session: AsyncSession, job: Job, rule: NotificationRule) -> bool:
    scope = (
        Job.schedule_id == rule.schedule_id
        if rule.schedule_id is not None
        else Job.notebook_id == rule.notebook_id
    )
    previous = await session.scalar(
        select(Job.status)
        .where(scope, Job.id < job.id, Job.status.in_(ENDED))
        .order_by(Job.id.desc())
        .limit(1)
    )
    return previous in FAILED


def message(job: Job, trigger: Trigger) -> dict[str, Any]:
    """The payload: Slack's ``text`` first, then the run (no secrets: nothing of the rule's target)."""
    name = job.notebook_name or job.input_path
    what = {
        Trigger.FAILURE: f"failed ({job.status})",
        Trigger.SUCCESS: "completed",
        Trigger.RECOVERY: "completed again after failing",
    }[trigger]
    scheduled = (
        f" (schedule {job.schedule_id}, fire time {job.fire_time.isoformat()})" if job.fire_time else ""
    )
    lines = [f"Notebook {name} of {job.username}: run {job.id} {what}{scheduled}."]
    if trigger == Trigger.FAILURE and job.error_message:
        lines.append(job.error_message[:500])
    public = NotifySettings().public_url
    if public:
        lines.append(f"{public.rstrip('/')}/executions/{job.id}")
    duration = None
    if job.started_at is not None and job.completed_at is not None:
        duration = max(0.0, (job.completed_at - job.started_at).total_seconds())
    return {
        "text": "\n".join(lines),
        "subject": f"[notebook-platform] {name}: run {job.id} {what}",
        "event": trigger.value,
        "execution": {
            "id": job.id,
            "status": job.status,
            "username": job.username,
            "notebook_id": job.notebook_id,
            "notebook_name": job.notebook_name,
            "input_path": job.input_path,
            "output_path": job.output_path,
            "schedule_id": job.schedule_id,
            "fire_time": job.fire_time.isoformat() if job.fire_time else None,
            "started_at": job.started_at.isoformat() if job.started_at else None,
            "completed_at": job.completed_at.isoformat() if job.completed_at else None,
            "duration_seconds": duration,
            "error_message": job.error_message,
        },
    }


async def on_run_ended(session: AsyncSession, job: Job) -> None:
    """Write the deliveries of ``job``'s ending (in the transaction that records the ending)."""
    if job.status not in ENDED:
        return
    scopes = []
    if job.schedule_id is not None:
        scopes.append(NotificationRule.schedule_id == job.schedule_id)
    if job.notebook_id is not None:
        scopes.append(NotificationRule.notebook_id == job.notebook_id)
    if not scopes:
        return
    rules = (
        await session.scalars(
            select(NotificationRule).where(or_(*scopes), NotificationRule.username == job.username)
        )
    ).all()
    written = 0
    for rule in rules:
        if job.status in FAILED:
            trigger: Trigger | None = Trigger.FAILURE if Trigger.FAILURE in rule.triggers else None
        elif Trigger.RECOVERY in rule.triggers and await _previous_failed(session, job, rule):
            trigger = Trigger.RECOVERY
        else:
            trigger = Trigger.SUCCESS if Trigger.SUCCESS in rule.triggers else None
        if trigger is None:
            continue
        session.add(
            NotificationDelivery(
                rule_id=rule.id, job_id=job.id, trigger=trigger.value, payload=message(job, trigger)
            )
        )
        written += 1
    if written:
        await session.execute(text("SELECT pg_notify(:c, '')"), {"c": NOTIFICATIONS})
