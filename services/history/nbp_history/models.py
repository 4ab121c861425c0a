"""The history's tables, in its own schema ``history``: the seed's ``notebook_executions`` plus what a
production record needs, the named results of each run, and the ids of the events already applied."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from nbp_common.db import schema_metadata
from nbp_common.events import STATUS_CHECK, TERMINAL
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
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, relationship

SCHEMA = "history"
LIVE_CONDITION = "status IN ('queued', 'running')"
ENDED_CONDITION = "status IN (" + ", ".join(f"'{s.value}'" for s in sorted(TERMINAL)) + ")"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


class Execution(Base):
    __tablename__ = "notebook_executions"
    __table_args__ = (
        CheckConstraint(STATUS_CHECK, name="status_known"),
        # Kept at intake (a worker's clock may lag the database's): a run starts after it is queued, so a
        # filter on started_at bounds queued_at too, and the pages of old runs are index ranges.
        CheckConstraint("started_at >= queued_at", name="started_after_queued"),
        # Lists are newest first by (queued_at, id), alone or after one equality filter; a keyset page
        # is a range of one of these, scanned backwards.
        Index("ix_notebook_executions_queued_at_id", "queued_at", "id"),
        Index("ix_notebook_executions_username_queued_at_id", "username", "queued_at", "id"),
        Index("ix_notebook_executions_notebook_id_queued_at_id", "notebook_id", "queued_at", "id"),
        Index("ix_notebook_executions_status_queued_at_id", "status", "queued_at", "id"),
        Index("ix_notebook_executions_started_at_id", "started_at", "id"),
        # The runs not yet ended, which the rollups do not hold (stats count them here).
        Index("ix_notebook_executions_live", "queued_at", postgresql_where=text(LIVE_CONDITION)),
        Index(
            "ix_notebook_executions_schedule_id_fire_time",
            "schedule_id",
            "fire_time",
            postgresql_where=text("schedule_id IS NOT NULL"),
        ),
    )

    # The executor's run id: one id names a run in both services. No sequence here.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # No foreign key: the notebook lives in the registry's schema and may be deleted; the record stays.
    notebook_id: Mapped[int | None] = mapped_column(BigInteger)
    notebook_name: Mapped[str | None] = mapped_column(String(255))
    username: Mapped[str] = mapped_column(String(255))
    input_path: Mapped[str] = mapped_column(String(2048))
    output_path: Mapped[str | None] = mapped_column(String(2048))
    parameters_used: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime | None] = mapped_column(TIMESTAMP(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(TIMESTAMP(timezone=True))
    execution_time_seconds: Mapped[float | None] = mapped_column(Double)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True), server_default=func.now())
    # What a production record adds to the seed's columns.
    # When the run was submitted; the record's place in every list. An event without one (none of
    # the executor's) gives its start, else its own time.
    queued_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True))
    attempt: Mapped[int] = mapped_column(Integer, server_default="1")
    kernel_name: Mapped[str | None] = mapped_column(String(255))
    worker: Mapped[str | None] = mapped_column(String(255))
    input_sha256: Mapped[str | None] = mapped_column(String(64))
    has_parameters_cell: Mapped[bool | None] = mapped_column(Boolean)
    tags: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    owner_groups: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    # A scheduled run: its schedule (in the executor) and nominal fire time; a retry: its first attempt.
    schedule_id: Mapped[int | None] = mapped_column(BigInteger)
    fire_time: Mapped[datetime | None] = mapped_column(TIMESTAMP(timezone=True))
    retry_of: Mapped[int | None] = mapped_column(BigInteger)
    error_cell_index: Mapped[int | None] = mapped_column(Integer)
    error_cell_source: Mapped[str | None] = mapped_column(Text)
    error_ename: Mapped[str | None] = mapped_column(String(255))
    error_evalue: Mapped[str | None] = mapped_column(Text)
    error_traceback: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        TIMESTAMP(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    results: Mapped[list[ExecutionResult]] = relationship(
        back_populates="execution", order_by="ExecutionResult.id", lazy="raise", passive_deletes=True
    )


class ExecutionResult(Base):
    """A named value a notebook recorded (``nbp.record("accuracy", 0.93)``): numbers go to
    ``value_numeric`` so that Superset can chart them; anything JSON goes to ``value_json``."""

    __tablename__ = "execution_results"
    __table_args__ = (UniqueConstraint("execution_id", "name"), Index(None, "name"))

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    execution_id: Mapped[int] = mapped_column(
        ForeignKey(f"{SCHEMA}.notebook_executions.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(255))
    value_numeric: Mapped[float | None] = mapped_column(Double)
    value_json: Mapped[Any | None] = mapped_column(JSONB(none_as_null=True))
    recorded_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True), server_default=func.now())

    execution: Mapped[Execution] = relationship(back_populates="results", lazy="raise")


class ProcessedEvent(Base):
    """Lifecycle events already applied, so that a redelivered event changes nothing."""

    __tablename__ = "processed_events"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    execution_id: Mapped[int] = mapped_column(BigInteger, index=True)
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True), server_default=func.now())


class _Rollup:
    """Ended runs counted per period (UTC), notebook, user and status. A run is added once, when its
    record reaches an ending (an ended record never changes again), in the transaction that records it.

    ``duration_histogram`` maps a bucket (``"17"``) to the number of runs whose
    ``execution_time_seconds`` fall in it (``nbp_history.rollups.histogram``): only the buckets seen."""

    period_start: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True))
    notebook_id: Mapped[int | None] = mapped_column(BigInteger)
    username: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    # The latest name seen: a renamed notebook keeps one row per period.
    notebook_name: Mapped[str | None] = mapped_column(String(255))
    runs: Mapped[int] = mapped_column(BigInteger)
    timed_runs: Mapped[int] = mapped_column(BigInteger)
    execution_time_sum: Mapped[float] = mapped_column(Double)
    duration_histogram: Mapped[dict[str, int]] = mapped_column(JSONB)

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Any, ...]:
        table = cls.__tablename__  # type: ignore[attr-defined]
        return (
            CheckConstraint(
                f"status IN ({', '.join(repr(s.value) for s in sorted(TERMINAL))})", name="ended"
            ),
            Index(
                f"ix_{table}_key",
                "period_start",
                "notebook_id",
                "username",
                "status",
                unique=True,
                postgresql_nulls_not_distinct=True,
            ),
        )


class HourlyRollup(_Rollup, Base):
    __tablename__ = "execution_rollups_hourly"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)


class QuarterDailyRollup(_Rollup, Base):
    """Six hours (from 00, 06, 12 and 18 UTC): with the weeks, the stats over a month read a few dozen
    rollup rows per notebook instead of every hour at its edges and every day in between."""

    __tablename__ = "execution_rollups_quarter_daily"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)


class DailyRollup(_Rollup, Base):
    __tablename__ = "execution_rollups_daily"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)


class WeeklyRollup(_Rollup, Base):
    """Seven days from a Monday (UTC)."""

    __tablename__ = "execution_rollups_weekly"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)


class RetiredRollup(_Rollup, Base):
    """What retention removed from the runs table, per hour: the hourly rollups are always the runs'
    aggregate plus this, which is how ``rebuild-rollups`` keeps the totals of runs no longer kept."""

    __tablename__ = "execution_rollups_retired"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)


class _ResultRollup:
    """The numbers ended runs recorded (``nbp.record``), per day (UTC, of the run's ``queued_at``),
    notebook and result name: how many runs recorded one, and their sum, least and greatest. A run's
    results are added once, when it ends, in the transaction that records its ending (what a run has
    recorded by then is what it keeps)."""

    period_start: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True))
    notebook_id: Mapped[int | None] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(255))
    # The latest name seen: a renamed notebook keeps one row per day.
    notebook_name: Mapped[str | None] = mapped_column(String(255))
    results: Mapped[int] = mapped_column(BigInteger)
    value_sum: Mapped[float] = mapped_column(Double)
    value_min: Mapped[float] = mapped_column(Double)
    value_max: Mapped[float] = mapped_column(Double)

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Any, ...]:
        table = cls.__tablename__  # type: ignore[attr-defined]
        return (
            Index(
                f"ix_{table}_key",
                "period_start",
                "notebook_id",
                "name",
                unique=True,
                postgresql_nulls_not_distinct=True,
            ),
        )


class DailyResultRollup(_ResultRollup, Base):
    __tablename__ = "execution_result_rollups_daily"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)


class RetiredResultRollup(_ResultRollup, Base):
    """The results of the runs retention removed, per day: the daily result rollups are always the
    runs' results plus this (as ``execution_rollups_retired`` is for the run rollups)."""

    __tablename__ = "execution_result_rollups_retired"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)


class RetentionPolicy(Base):
    """A notebook's own retention, overriding the platform's (``NBP_HISTORY_RETENTION_DAYS``)."""

    __tablename__ = "retention_policies"

    notebook_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    retention_days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(
        TIMESTAMP(timezone=True), server_default=func.now(), onupdate=func.now()
    )
