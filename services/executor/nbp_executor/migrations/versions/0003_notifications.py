"""notification rules (per schedule or per notebook) and the delivery outbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "executor"


def _ts(name: str, nullable: bool = True, now: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        name,
        postgresql.TIMESTAMP(timezone=True),
        server_default=sa.text("now()") if now else None,
        nullable=nullable,
    )


def upgrade() -> None:
    op.create_table(
        "notification_rules",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("schedule_id", sa.BigInteger(), nullable=True),
        sa.Column("notebook_id", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("signing_secret", sa.String(length=255), nullable=True),
        sa.Column("triggers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _ts("created_at", nullable=False, now=True),
        sa.CheckConstraint(
            "channel IN ('webhook', 'email')", name=op.f("ck_notification_rules_channel_known")
        ),
        sa.CheckConstraint(
            "(schedule_id IS NULL) <> (notebook_id IS NULL)", name=op.f("ck_notification_rules_one_scope")
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            [f"{SCHEMA}.schedules.id"],
            name=op.f("fk_notification_rules_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_rules")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_notification_rules_schedule_id"), "notification_rules", ["schedule_id"], schema=SCHEMA
    )
    op.create_index(
        op.f("ix_notification_rules_notebook_id"), "notification_rules", ["notebook_id"], schema=SCHEMA
    )
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("rule_id", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _ts("created_at", nullable=False, now=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _ts("next_attempt_at", nullable=False, now=True),
        _ts("delivered_at"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "trigger IN ('failure', 'success', 'recovery')",
            name=op.f("ck_notification_deliveries_trigger_known"),
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            [f"{SCHEMA}.notification_rules.id"],
            name=op.f("fk_notification_deliveries_rule_id_notification_rules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_deliveries")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_notification_deliveries_rule_id"), "notification_deliveries", ["rule_id"], schema=SCHEMA
    )
    op.create_index(
        "ix_notification_deliveries_pending",
        "notification_deliveries",
        ["next_attempt_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("delivered_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("notification_deliveries", schema=SCHEMA)
    op.drop_table("notification_rules", schema=SCHEMA)
