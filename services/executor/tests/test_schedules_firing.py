"""Firing with a clock the test controls (the only way to reach a daylight-saving day): the 02:30
Europe/Berlin schedule on the spring-forward and fall-back days of 2027, catch-up after downtime,
max_concurrent, and a fire time claimed once however often a pass sees it. Real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from nbp_common.db import Database
from nbp_common.events import ExecutionStatus
from nbp_executor.models import Job
from nbp_executor.schedules import calendar
from nbp_executor.schedules.firing import fire_due, first_fire
from nbp_executor.schedules.models import Schedule, ScheduleFire
from nbp_executor.schedules.settings import SchedulerSettings
from nbp_executor.settings import ExecutorSettings
from sqlalchemy import select
from sqlalchemy.engine import URL

from tests.support.common import settings_for

BERLIN = calendar.zone("Europe/Berlin")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def berlin(instant: datetime) -> str:
    return instant.astimezone(BERLIN).isoformat()


def test_spring_forward_fires_at_the_first_instant_after_the_gap() -> None:
    times = calendar.upcoming("30 2 * * *", BERLIN, utc(2027, 3, 27, 12), 3)
    assert [berlin(t) for t in times] == [
        "2027-03-28T03:00:00+02:00",  # 02:30 does not exist that night: 03:00 CEST, once
        "2027-03-29T02:30:00+02:00",
        "2027-03-30T02:30:00+02:00",
    ]
    # Every wall time inside the gap collapses onto the same instant, which fires once.
    half_hours = calendar.upcoming("0,30 2,3 * * *", BERLIN, utc(2027, 3, 27, 23), 3)
    assert [berlin(t) for t in half_hours] == [
        "2027-03-28T03:00:00+02:00",
        "2027-03-28T03:30:00+02:00",
        "2027-03-29T02:00:00+02:00",
    ]


def test_fall_back_fires_once_at_the_first_occurrence() -> None:
    times = calendar.upcoming("30 2 * * *", BERLIN, utc(2027, 10, 30, 12), 3)
    assert [berlin(t) for t in times] == [
        "2027-10-31T02:30:00+02:00",  # 02:30 happens twice: the first (summer time) fires, only it
        "2027-11-01T02:30:00+01:00",
        "2027-11-02T02:30:00+01:00",
    ]
    # From inside the repeated hour, the repeated wall times do not fire again.
    assert berlin(calendar.upcoming("30 2 * * *", BERLIN, utc(2027, 10, 31, 1, 0), 1)[0]) == (
        "2027-11-01T02:30:00+01:00"
    )
    hourly = calendar.upcoming("30 * * * *", BERLIN, utc(2027, 10, 30, 23, 15), 4)
    assert [berlin(t) for t in hourly] == [
        "2027-10-31T01:30:00+02:00",
        "2027-10-31T02:30:00+02:00",
        "2027-10-31T03:30:00+01:00",
        "2027-10-31T04:30:00+01:00",
    ]


@pytest.fixture
async def database(database_url: URL) -> AsyncIterator[Database]:
    db = Database(settings_for(database_url))
    try:
        yield db
    finally:
        await db.dispose()


async def add_schedule(db: Database, after: datetime, **values: object) -> int:
    schedule = Schedule(
        username="uma",
        notebook_path="report.ipynb",
        kernel_name="python3",
        cron=values.pop("cron", "30 2 * * *"),
        timezone=values.pop("timezone", "Europe/Berlin"),
        parameters={},
        run_parameters={},
        owner_groups=["data-scientists"],
        **values,
    )
    schedule.next_fire_at = first_fire(schedule, after)
    async with db.sessionmaker() as session, session.begin():
        session.add(schedule)
        await session.flush()
        return schedule.id


async def fire(db: Database, now: datetime) -> int:
    return await fire_due(db.sessionmaker, ExecutorSettings(), SchedulerSettings(), now)


async def fires(db: Database, schedule_id: int) -> list[tuple[datetime, str, int | None]]:
    async with db.sessionmaker() as session:
        rows = await session.scalars(
            select(ScheduleFire)
            .where(ScheduleFire.schedule_id == schedule_id)
            .order_by(ScheduleFire.fire_time)
        )
        return [(f.fire_time, f.outcome, f.job_id) for f in rows]


async def jobs_of(db: Database, schedule_id: int) -> list[Job]:
    async with db.sessionmaker() as session:
        rows = await session.scalars(select(Job).where(Job.schedule_id == schedule_id).order_by(Job.id))
        return list(rows)


async def next_fire_at(db: Database, schedule_id: int) -> datetime | None:
    async with db.sessionmaker() as session:
        schedule = await session.get_one(Schedule, schedule_id)
        return schedule.next_fire_at


async def test_berlin_0230_on_both_change_days_fires_once_each(database: Database) -> None:
    spring = await add_schedule(database, utc(2027, 3, 27, 12))
    autumn = await add_schedule(database, utc(2027, 10, 30, 12))

    assert await fire(database, utc(2027, 3, 28, 0, 59, 59)) == 0  # 01:59:59 CET: not yet
    assert await fire(database, utc(2027, 3, 28, 1, 0, 1)) == 1  # 03:00:01 CEST
    assert await fire(database, utc(2027, 3, 28, 1, 0, 2)) == 0
    [(fire_time, outcome, job_id)] = await fires(database, spring)
    assert berlin(fire_time) == "2027-03-28T03:00:00+02:00"
    [job] = await jobs_of(database, spring)
    assert (outcome, job_id, job.fire_time, job.status) == ("queued", job.id, fire_time, "queued")
    assert job.owner_groups == ["data-scientists"]  # the schedule owner's, captured with the schedule
    assert await next_fire_at(database, spring) == utc(2027, 3, 29, 0, 30)
    async with database.sessionmaker() as session, session.begin():
        (await session.get_one(Schedule, spring)).enabled = False

    assert await fire(database, utc(2027, 10, 31, 0, 30, 1)) == 1  # 02:30:01 CEST
    assert await fire(database, utc(2027, 10, 31, 1, 30, 1)) == 0  # 02:30:01 CET: the same wall time
    [(fire_time, _, _)] = await fires(database, autumn)
    assert berlin(fire_time) == "2027-10-31T02:30:00+02:00"
    assert await next_fire_at(database, autumn) == utc(2027, 11, 1, 1, 30)


async def test_a_fire_time_is_claimed_once_even_when_seen_again(database: Database) -> None:
    schedule_id = await add_schedule(database, utc(2027, 1, 1), cron="0 * * * *", timezone="UTC")
    assert await fire(database, utc(2027, 1, 1, 1, 0, 0)) == 1
    # As if another process had read the old next fire time: the claim row refuses the repeat.
    async with database.sessionmaker() as session, session.begin():
        schedule = await session.get_one(Schedule, schedule_id)
        schedule.next_fire_at = utc(2027, 1, 1, 1)
    assert await fire(database, utc(2027, 1, 1, 1, 0, 1)) == 1
    assert [t for t, _, _ in await fires(database, schedule_id)] == [utc(2027, 1, 1, 1)]
    assert len(await jobs_of(database, schedule_id)) == 1
    assert await next_fire_at(database, schedule_id) == utc(2027, 1, 1, 2)


@pytest.mark.parametrize(("catch_up", "fired"), [("none", []), ("latest", [utc(2027, 1, 1, 6)])])
async def test_missed_fire_times_after_downtime(
    database: Database, catch_up: str, fired: list[datetime]
) -> None:
    schedule_id = await add_schedule(
        database, utc(2027, 1, 1), cron="0 * * * *", timezone="UTC", catch_up=catch_up
    )
    # Down from 00:30 to 06:20: fire times 01:00 ... 06:00 were missed.
    assert await fire(database, utc(2027, 1, 1, 6, 20)) == 1
    assert [t for t, _, _ in await fires(database, schedule_id)] == fired
    assert await next_fire_at(database, schedule_id) == utc(2027, 1, 1, 7)
    # Late within the grace (a restart just now) is not missed, whatever catch_up says.
    assert await fire(database, utc(2027, 1, 1, 7, 0, 30)) == 1
    assert [t for t, _, _ in await fires(database, schedule_id)][-1] == utc(2027, 1, 1, 7)


async def test_a_fire_beyond_max_concurrent_is_skipped_with_the_reason(database: Database) -> None:
    schedule_id = await add_schedule(database, utc(2027, 1, 1), cron="*/5 * * * *", timezone="UTC")
    assert await fire(database, utc(2027, 1, 1, 0, 5)) == 1
    assert await fire(database, utc(2027, 1, 1, 0, 10)) == 1  # the first run is still queued
    [first, second] = await fires(database, schedule_id)
    assert first[1] == "queued"
    assert second[1:] == ("skipped", None)
    async with database.sessionmaker() as session:
        skipped = await session.get_one(ScheduleFire, (schedule_id, second[0]))
        assert skipped.reason is not None
        assert "max_concurrent 1" in skipped.reason
    async with database.sessionmaker() as session, session.begin():
        job = await session.get_one(Job, first[2])
        job.status = ExecutionStatus.COMPLETED
    assert await fire(database, utc(2027, 1, 1, 0, 15)) == 1
    assert [o for _, o, _ in await fires(database, schedule_id)] == ["queued", "skipped", "queued"]
