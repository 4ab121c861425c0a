"""The schedules' rules behind the routes: every check before anything is stored (the cron expression,
the timezone, the notebook and its owner, the parameters against the notebook's definitions, the
kernel), then the row, its next fire time, and a NOTIFY so that every executor re-plans its sleep."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from nbp_common.auth import Principal, ensure_acting_for, owner_scope
from nbp_common.errors import FieldError, Invalid, NotFound
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nbp_executor.api import service
from nbp_executor.intake import parameters
from nbp_executor.models import Job
from nbp_executor.queueing import jobs, wakeups
from nbp_executor.retries import policy as retries
from nbp_executor.runtime import ExecutorRuntime
from nbp_executor.schedules import calendar, firing
from nbp_executor.schedules.models import Schedule, ScheduleFire
from nbp_executor.schedules.schemas import ScheduleCreate, ScheduleDetail, ScheduleOut, ScheduleUpdate
from nbp_executor.schemas import RunRequest

UPCOMING = 5


def check_calendar(cron: str, timezone: str) -> str:
    """The normalised expression, or one 422 naming every bad field and its rule."""
    errors: list[FieldError] = []
    normal = cron
    try:
        normal = calendar.check_cron(cron)
    except calendar.CalendarError as exc:
        errors.append(FieldError(field=exc.field, rule=exc.rule, message=exc.message))
    try:
        calendar.zone(timezone)
    except calendar.CalendarError as exc:
        errors.append(FieldError(field=exc.field, rule=exc.rule, message=exc.message))
    if errors:
        raise Invalid.fields(errors)
    return normal


def schedule_out(schedule: Schedule) -> ScheduleOut:
    columns = {c.key: getattr(schedule, c.key) for c in Schedule.__table__.columns}
    return ScheduleOut.model_validate({**columns, "retry": retries.policy_of(schedule)})


def schedule_detail(schedule: Schedule, now: datetime) -> ScheduleDetail:
    upcoming: list[datetime] = []
    if schedule.enabled:
        upcoming = calendar.upcoming(schedule.cron, calendar.zone(schedule.timezone), now, UPCOMING)
    return ScheduleDetail.model_validate({**schedule_out(schedule).model_dump(), "next_fire_times": upcoming})


async def _replan(session: AsyncSession) -> None:
    await jobs.notify(session, wakeups.SCHEDULES)


async def create(
    rt: ExecutorRuntime, session: AsyncSession, body: ScheduleCreate, principal: Principal
) -> Schedule:
    cron = check_calendar(body.cron, body.timezone)
    parameters.check_size(body.parameters, rt.settings.executor_max_parameters_bytes)
    request = RunRequest(
        body.username,
        body.notebook_id,
        body.notebook_path,
        body.parameters,
        kernel_name=body.kernel_name,
        timeout_seconds=body.timeout_seconds,
    )
    target = await service.run_target(rt, request, principal)
    checked = await service.check_run(rt, target, request)
    schedule = Schedule(
        username=checked.username,
        notebook_id=checked.notebook["id"] if checked.notebook is not None else None,
        notebook_name=checked.notebook["name"] if checked.notebook is not None else None,
        notebook_path=checked.source.relative,
        cron=cron,
        timezone=body.timezone,
        parameters=body.parameters,
        run_parameters=checked.parameters,
        kernel_name=checked.kernel_name,
        timeout_seconds=body.timeout_seconds,
        enabled=body.enabled,
        description=body.description,
        catch_up=body.catch_up.value,
        max_concurrent=body.max_concurrent,
        owner_groups=service.owner_groups(principal, checked.username),
        **retries.columns(body.retry),
    )
    schedule.next_fire_at = firing.first_fire(schedule, firing.utcnow()) if body.enabled else None
    session.add(schedule)
    await _replan(session)
    await session.commit()
    await session.refresh(schedule)
    return schedule


async def get(session: AsyncSession, schedule_id: int, principal: Principal, lock: bool = False) -> Schedule:
    """The schedule, if the caller may see it (another user's is answered as if it did not exist)."""
    schedule = await session.get(Schedule, schedule_id, with_for_update=lock, populate_existing=True)
    if schedule is None or not principal.may_read(schedule.username):
        raise NotFound(f"schedule {schedule_id} does not exist")
    return schedule


async def listing(
    session: AsyncSession, principal: Principal, username: str | None, limit: int, offset: int
) -> tuple[int, Sequence[Schedule]]:
    scope = owner_scope(principal)
    query = select(Schedule)
    if scope is not None:
        query = query.where(Schedule.username == scope)
    if username is not None:
        query = query.where(Schedule.username == username)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(Schedule.id).limit(limit).offset(offset))
    return int(total or 0), rows.all()


async def update(
    rt: ExecutorRuntime, session: AsyncSession, schedule_id: int, body: ScheduleUpdate, principal: Principal
) -> Schedule:
    schedule = await get(session, schedule_id, principal, lock=True)
    ensure_acting_for(principal, schedule.username)
    changes = body.model_dump(exclude_unset=True)
    for name in ("cron", "timezone", "enabled", "catch_up", "max_concurrent", "retry"):
        if changes.get(name, ...) is None:
            raise Invalid.field(name, "not_null", "may be left out, but not null")
    cron = check_calendar(changes.get("cron", schedule.cron), changes.get("timezone", schedule.timezone))
    if "parameters" in changes:
        new = changes["parameters"] or {}
        parameters.check_size(new, rt.settings.executor_max_parameters_bytes)
        request = RunRequest(schedule.username, notebook_path=schedule.notebook_path, parameters=new)
        notebook = None if schedule.notebook_id is None else await rt.registry.notebook(schedule.notebook_id)
        target = service.Target(schedule.username, notebook, schedule.notebook_path, "notebook_path")
        checked = await service.check_run(rt, target, request)
        schedule.parameters = new
        schedule.run_parameters = checked.parameters
    calendar_changed = (
        cron != schedule.cron or changes.get("timezone", schedule.timezone) != schedule.timezone
    )
    resumed = changes.get("enabled") is True and not schedule.enabled
    schedule.cron = cron
    if principal.username == schedule.username:
        schedule.owner_groups = service.owner_groups(principal, schedule.username)
    for name in ("timezone", "enabled", "description", "max_concurrent", "timeout_seconds"):
        if name in changes:
            setattr(schedule, name, changes[name])
    if body.retry is not None:
        for name, value in retries.columns(body.retry).items():
            setattr(schedule, name, value)
    if "catch_up" in changes:
        schedule.catch_up = changes["catch_up"].value
    if not schedule.enabled:
        schedule.next_fire_at = None
    elif calendar_changed or resumed or schedule.next_fire_at is None:
        # Resuming never fires the times that passed while paused.
        schedule.next_fire_at = firing.first_fire(schedule, firing.utcnow())
    await _replan(session)
    await session.commit()
    await session.refresh(schedule)
    return schedule


async def delete(session: AsyncSession, schedule_id: int, principal: Principal) -> None:
    schedule = await get(session, schedule_id, principal, lock=True)
    ensure_acting_for(principal, schedule.username)
    await session.delete(schedule)
    await session.commit()


async def run_now(rt: ExecutorRuntime, session: AsyncSession, schedule_id: int, principal: Principal) -> Job:
    schedule = await get(session, schedule_id, principal)
    ensure_acting_for(principal, schedule.username)
    job = await firing.enqueue(session, rt.settings, schedule, None)
    await session.commit()
    return job


async def runs(
    session: AsyncSession, schedule_id: int, principal: Principal, limit: int, offset: int
) -> tuple[int, Sequence[Job]]:
    await get(session, schedule_id, principal)
    total = await session.scalar(select(func.count()).select_from(Job).where(Job.schedule_id == schedule_id))
    rows = await session.scalars(
        select(Job).where(Job.schedule_id == schedule_id).order_by(Job.id.desc()).limit(limit).offset(offset)
    )
    return int(total or 0), rows.all()


async def fires(
    session: AsyncSession, schedule_id: int, principal: Principal, limit: int, offset: int
) -> tuple[int, Sequence[ScheduleFire]]:
    await get(session, schedule_id, principal)
    where = ScheduleFire.schedule_id == schedule_id
    total = await session.scalar(select(func.count()).select_from(ScheduleFire).where(where))
    rows = await session.scalars(
        select(ScheduleFire).where(where).order_by(ScheduleFire.fire_time.desc()).limit(limit).offset(offset)
    )
    return int(total or 0), rows.all()
