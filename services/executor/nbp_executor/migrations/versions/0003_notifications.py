"""notification rules (per schedule or per notebook) and the delivery outbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from nbp_executor.migrations import ddl
from nbp_executor.migrations.ddl import SCHEMA
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    rules, deliveries = "notification_rules", "notification_deliveries"
    op.create_table(
        rules,
        ddl.identity(),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("schedule_id", sa.BigInteger(), nullable=True),
        sa.Column("notebook_id", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("signing_secret", sa.String(length=255), nullable=True),
        sa.Column("triggers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        ddl.timestamp("created_at", nullable=False, default="now()"),
        ddl.known(rules, "channel", ("webhook", "email")),
        sa.CheckConstraint(
            "(schedule_id IS NULL) <> (notebook_id IS NULL)", name=op.f(f"ck_{rules}_one_scope")
        ),
        ddl.cascade_to(rules, "schedule_id", "schedules"),
        ddl.primary_key(rules),
        schema=SCHEMA,
    )
    ddl.index_on(rules, "schedule_id")
    ddl.index_on(rules, "notebook_id")
    op.create_table(
        deliveries,
        ddl.identity(),
        sa.Column("rule_id", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        ddl.timestamp("created_at", nullable=False, default="now()"),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        ddl.timestamp("next_attempt_at", nullable=False, default="now()"),
        ddl.timestamp("delivered_at"),
        sa.Column("last_error", sa.Text(), nullable=True),
        ddl.known(deliveries, "trigger", ("failure", "success", "recovery")),
        ddl.cascade_to(deliveries, "rule_id", rules),
        ddl.primary_key(deliveries),
        schema=SCHEMA,
    )
    ddl.index_on(deliveries, "rule_id")
    op.create_index(
        "ix_notification_deliveries_pending",
        deliveries,
        ["next_attempt_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("delivered_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("notification_deliveries", schema=SCHEMA)
    op.drop_table("notification_rules", schema=SCHEMA)
