"""Fire times of a cron expression in a timezone, with one rule for daylight-saving changes.

The expression is matched against the *local wall clock* (cronsim over naive datetimes), and each wall
time is then placed on the timeline:

- a wall time that does not exist (skipped by a spring-forward change, e.g. 02:30 in Europe/Berlin on
  the last Sunday of March) fires at the first valid instant after the gap (03:00 local, new offset);
  several that fall into the same gap fire once;
- a wall time that occurs twice (a fall-back change, e.g. 02:30 on the last Sunday of October) fires
  once, at its first occurrence (the earlier offset, still summer time).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError


class CalendarError(ValueError):
    """An expression or a timezone that cannot make a calendar; ``field`` and ``rule`` say which."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule
        self.message = message


def zone(name: str) -> ZoneInfo:
    if name not in _zone_names():
        raise CalendarError("timezone", "iana", f"{name!r} is not an IANA timezone name (e.g. Europe/Berlin)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarError("timezone", "iana", f"{name!r} cannot be loaded: {exc}") from exc


_ZONES: frozenset[str] | None = None


def _zone_names() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones()) | {"UTC"}
    return _ZONES


def check_cron(expression: str) -> str:
    """The expression, normalised (single spaces), or a CalendarError naming the rule."""
    fields = expression.split()
    if len(fields) != 5:
        raise CalendarError(
            "cron",
            "five_fields",
            f"must have five fields (minute hour day-of-month month day-of-week), found {len(fields)}",
        )
    normal = " ".join(fields)
    try:
        CronSim(normal, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise CalendarError("cron", "syntax", f"is not a valid cron expression: {exc}") from exc
    if next_fire(normal, ZoneInfo("UTC"), datetime.now(UTC)) is None:
        raise CalendarError("cron", "never_fires", "matches no time in the next fifty years")
    return normal


def _exists(wall: datetime, tz: ZoneInfo) -> bool:
    instant = wall.replace(tzinfo=tz)
    return instant.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall


def _place(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant a local wall time fires at (the rule in the module's docstring)."""
    while not _exists(wall, tz):
        wall = (wall + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def fire_times(expression: str, tz: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Fire times strictly after ``after`` (aware), in UTC, ascending, each once (cronsim gives up after
    fifty years without a match)."""
    start_wall = after.astimezone(tz).replace(tzinfo=None)
    last = after
    for wall in CronSim(expression, start_wall - timedelta(minutes=1)):
        instant = _place(wall, tz)
        if instant > last:
            last = instant
            yield instant


# Many schedules share an expression and a fire time: a batch of them computes each once.
@functools.lru_cache(maxsize=4096)
def next_fire(expression: str, tz: ZoneInfo, after: datetime) -> datetime | None:
    return next(fire_times(expression, tz, after), None)


def upcoming(expression: str, tz: ZoneInfo, after: datetime, count: int) -> list[datetime]:
    found: list[datetime] = []
    for instant in fire_times(expression, tz, after):
        found.append(instant)
        if len(found) == count:
            break
    return found


@functools.lru_cache(maxsize=4096)
def latest_at_or_before(expression: str, tz: ZoneInfo, since: datetime, now: datetime) -> datetime | None:
    """The last fire time in ``[since, now]``, if any (``since`` is itself a fire time)."""
    latest: datetime | None = None
    for instant in fire_times(expression, tz, since - timedelta(microseconds=1)):
        if instant > now:
            break
        latest = instant
    return latest
