"""A schedule and its fires, in the executor's schema.

``schedule_fires`` is the claim: its primary key ``(schedule_id, fire_time)`` lets exactly one executor
process, in the transaction that also queues the run, take a fire time; any other process (a replica, or
this one after a restart) that tries the same fire time again conflicts and does nothing.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP
from sqlalchemy.orm import Mapped, mapped_column

from nbp_executor.models import Base


class CatchUp(enum.StrEnum):
    """What a schedule does with fire times missed while no executor was running."""

    NONE = "none"  # skip them
    LATEST = "latest"  # run once, for the latest of them


class Overlap(enum.StrEnum):
    """What a fire does when ``max_concurrent`` runs of its schedule are still queued or running."""

    SKIP = "skip"  # the fire is recorded as skipped, with the reason; no run


class FireOutcome(enum.StrEnum):
    QUEUED = "queued"
    SKIPPED = "skipped"


def _check(column: str, values: type[enum.StrEnum]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v.value}'" for v in values) + ")"


class Schedule(Base):
    __tablename__ = "schedules"
    __table_args__ = (
        CheckConstraint(_check("catch_up", CatchUp), name="catch_up_known"),
        CheckConstraint(_check("overlap", Overlap), name="overlap_known"),
        CheckConstraint("max_concurrent >= 1", name="max_concurrent_positive"),
        # The firing loop: enabled schedules by their next fire time.
        Index("ix_schedules_due", "next_fire_at", postgresql_where=text("enabled")),
        Index(None, "username"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(String(255))
    notebook_id: Mapped[int | None] = mapped_column(BigInteger)
    notebook_name: Mapped[str | None] = mapped_column(String(255))
    # Relative to the owner's folder, as resolved when the schedule was created or changed.
    notebook_path: Mapped[str] = mapped_column(String(2048))
    cron: Mapped[str] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64))
    # As given, and as every run gets them: the registered defaults overlaid and checked.
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    run_parameters: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    kernel_name: Mapped[str] = mapped_column(String(255))
    timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="true")
    description: Mapped[str | None] = mapped_column(Text)
    catch_up: Mapped[str] = mapped_column(String(16), server_default=CatchUp.NONE.value)
    max_concurrent: Mapped[int] = mapped_column(Integer, server_default="1")
    overlap: Mapped[str] = mapped_column(String(16), server_default=Overlap.SKIP.value)
    # The retry policy of its runs (see nbp_executor.retries).
    retry_max: Mapped[int] = mapped_column(Integer, server_default="0")
    retry_backoff_seconds: Mapped[float] = mapped_column(Double, server_default="60")
    retry_on: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    # The owner's realm groups, which its runs record (jobs.owner_groups): captured from the owner's own
    # token when they create or change the schedule; none when an admin acts for them.
    owner_groups: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    # The next fire time not yet claimed (UTC); None while disabled.
    next_fire_at: Mapped[datetime | None] = mapped_column(TIMESTAMP(timezone=True))
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        TIMESTAMP(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ScheduleFire(Base):
    __tablename__ = "schedule_fires"
    __table_args__ = (CheckConstraint(_check("outcome", FireOutcome), name="outcome_known"),)

    schedule_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("executor.schedules.id", ondelete="CASCADE"), primary_key=True
    )
    fire_time: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    # When the claim was committed: its lag behind fire_time is the fire latency.
    fired_at: Mapped[datetime] = mapped_column(
        TIMESTAMP(timezone=True), server_default=func.clock_timestamp()
    )
