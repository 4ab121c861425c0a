"""Notification rules and the delivery outbox, in the executor's schema.

A run's ending writes its deliveries in the same transaction as the ending itself (so none is lost);
a delivery task in every executor process sends them, ``FOR UPDATE SKIP LOCKED``, retrying with
exponential backoff until the receiver takes them.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
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
from nbp_executor.schedules.models import Schedule


class Channel(enum.StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


class Trigger(enum.StrEnum):
    FAILURE = "failure"  # the run failed or timed out
    SUCCESS = "success"  # the run completed
    RECOVERY = "recovery"  # the run completed and the previous ended run (same scope) had not


def _check(column: str, values: type[enum.StrEnum]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v.value}'" for v in values) + ")"


class NotificationRule(Base):
    __tablename__ = "notification_rules"
    __table_args__ = (
        CheckConstraint(_check("channel", Channel), name="channel_known"),
        CheckConstraint("(schedule_id IS NULL) <> (notebook_id IS NULL)", name="one_scope"),
        Index(None, "schedule_id"),
        Index(None, "notebook_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(String(255))
    # Exactly one scope: a schedule's runs, or every run of a registered notebook.
    schedule_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey(Schedule.id, ondelete="CASCADE"))
    notebook_id: Mapped[int | None] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(16))
    # A webhook URL (may carry a secret: never shown back) or an e-mail address.
    target: Mapped[str] = mapped_column(Text)
    # The HMAC-SHA256 key of a webhook's signature (never shown back after creation).
    signing_secret: Mapped[str | None] = mapped_column(String(255))
    triggers: Mapped[list[str]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True), server_default=func.now())


class NotificationDelivery(Base):
    __tablename__ = "notification_deliveries"
    __table_args__ = (
        CheckConstraint(_check("trigger", Trigger), name="trigger_known"),
        Index(
            "ix_notification_deliveries_pending",
            "next_attempt_at",
            postgresql_where=text("delivered_at IS NULL"),
        ),
        Index(None, "rule_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    rule_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("executor.notification_rules.id", ondelete="CASCADE")
    )
    job_id: Mapped[int] = mapped_column(BigInteger)
    trigger: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True), server_default=func.now())
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(TIMESTAMP(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
