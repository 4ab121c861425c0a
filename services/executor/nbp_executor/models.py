"""The executor's tables, in its own schema ``executor``: the jobs (queue and run state) and the outbox.

A job's id is the execution id everywhere: the API's ``/executions/{id}`` and the history's record.
Every state change of a job writes the job row and one outbox row in the same transaction; the relay
delivers the outbox to the history service.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from nbp_common.db import StatusColumn, schema_metadata
from nbp_common.events import STATUS_CHECK, ExecutionStatus
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
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
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "executor"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(STATUS_CHECK, name="status_known"),
        UniqueConstraint("username", "idempotency_key"),
        # The claim: the oldest queued job. The reaper: running jobs by lease expiry.
        Index("ix_jobs_queued", "id", postgresql_where=text("status = 'queued'")),
        Index("ix_jobs_running_lease", "lease_expires_at", postgresql_where=text("status = 'running'")),
        Index("ix_jobs_username_status", "username", "status"),
        Index("ix_jobs_schedule_id", "schedule_id", postgresql_where=text("schedule_id IS NOT NULL")),
        Index("ix_jobs_retry_of", "retry_of", postgresql_where=text("retry_of IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    status: Mapped[ExecutionStatus] = mapped_column(
        StatusColumn(), server_default=ExecutionStatus.QUEUED.value
    )
    attempt: Mapped[int] = mapped_column(Integer, server_default="1")
    max_attempts: Mapped[int] = mapped_column(Integer, server_default="1")
    idempotency_key: Mapped[str | None] = mapped_column(String(255))

    username: Mapped[str] = mapped_column(String(255))
    notebook_id: Mapped[int | None] = mapped_column(BigInteger)
    notebook_name: Mapped[str | None] = mapped_column(String(255))
    input_path: Mapped[str] = mapped_column(String(2048))
    output_path: Mapped[str] = mapped_column(String(2048))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    kernel_name: Mapped[str] = mapped_column(String(255))
    timeout_seconds: Mapped[int] = mapped_column(Integer)
    cell_timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    # The CPU and memory the run asked for (the kubernetes runner's pod; None: the defaults).
    resources: Mapped[dict[str, str] | None] = mapped_column(JSONB(none_as_null=True))
    tags: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    # The owner's realm groups when the run was submitted (the history's and the dashboards' "by group").
    owner_groups: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    input_sha256: Mapped[str | None] = mapped_column(String(64))
    has_parameters_cell: Mapped[bool | None] = mapped_column(Boolean)
    # A run a schedule started: its schedule and nominal fire time (None for "run now").
    schedule_id: Mapped[int | None] = mapped_column(BigInteger)
    fire_time: Mapped[datetime | None] = mapped_column(TIMESTAMP(timezone=True))
    # Retries: the policy, the first attempt's id (on attempts after it), and when it may start.
    retry_of: Mapped[int | None] = mapped_column(BigInteger)
    retry_max: Mapped[int] = mapped_column(Integer, server_default="0")
    retry_backoff_seconds: Mapped[float] = mapped_column(Double, server_default="60")
    retry_on: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    not_before: Mapped[datetime | None] = mapped_column(TIMESTAMP(timezone=True))

    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(TIMESTAMP(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(TIMESTAMP(timezone=True))
    worker: Mapped[str | None] = mapped_column(String(255))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, server_default="false")

    cells_done: Mapped[int] = mapped_column(Integer, server_default="0")
    cells_total: Mapped[int | None] = mapped_column(Integer)
    current_cell: Mapped[int | None] = mapped_column(Integer)

    error_message: Mapped[str | None] = mapped_column(Text)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")

    queued_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(TIMESTAMP(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(TIMESTAMP(timezone=True))
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        TIMESTAMP(timezone=True), server_default=func.now(), onupdate=func.now()
    )


def queued_state(at: datetime) -> dict[str, Any]:
    """The columns every new run starts with, whoever queues it (the API, a schedule's fire, a retry)."""
    return {
        "status": ExecutionStatus.QUEUED,
        "cancel_requested": False,
        "cells_done": 0,
        "results": [],
        "queued_at": at,
    }


class OutboxEvent(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "id", postgresql_where=text("delivered_at IS NULL")),
        Index(None, "job_id"),
    )

    # Delivery order: by id, which follows commit order closely enough (the history is order-safe).
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    # No foreign key: the outbox outlives nothing, but it must never block a job's deletion either.
    job_id: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(TIMESTAMP(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True), server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(Text)
