"""initial schema: jobs (the queue and the run state) and the outbox to the history

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from nbp_executor.migrations import ddl
from nbp_executor.migrations.ddl import SCHEMA
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="1", nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default="1", nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("notebook_id", sa.BigInteger(), nullable=True),
        sa.Column("notebook_name", sa.String(length=255), nullable=True),
        sa.Column("input_path", sa.String(length=2048), nullable=False),
        sa.Column("output_path", sa.String(length=2048), nullable=False),
        sa.Column("parameters", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("kernel_name", sa.String(length=255), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("cell_timeout_seconds", sa.Integer(), nullable=True),
        sa.Column("tags", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("input_sha256", sa.String(length=64), nullable=True),
        sa.Column("has_parameters_cell", sa.Boolean(), nullable=True),
        sa.Column("lease_owner", sa.String(length=255), nullable=True),
        ddl.timestamp("lease_expires_at"),
        ddl.timestamp("heartbeat_at"),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("cells_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cells_total", sa.Integer(), nullable=True),
        sa.Column("current_cell", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error", postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), nullable=True),
        sa.Column("results", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        ddl.timestamp("queued_at", nullable=False, default="now()"),
        ddl.timestamp("started_at"),
        ddl.timestamp("completed_at"),
        ddl.timestamp("created_at", nullable=False, default="now()"),
        ddl.timestamp("updated_at", nullable=False, default="now()"),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'completed', 'failed', 'cancelled', 'timed_out')",
            name=op.f("ck_jobs_status_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("username", "idempotency_key", name=op.f("uq_jobs_username_idempotency_key")),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_jobs_queued", "jobs", ["id"], schema=SCHEMA, postgresql_where=sa.text("status = 'queued'")
    )
    op.create_index(
        "ix_jobs_running_lease",
        "jobs",
        ["lease_expires_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_index("ix_jobs_username_status", "jobs", ["username", "status"], schema=SCHEMA)
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        ddl.timestamp("created_at", nullable=False, default="now()"),
        ddl.timestamp("delivered_at"),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        ddl.timestamp("next_attempt_at", nullable=False, default="now()"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
        schema=SCHEMA,
    )
    op.create_index(op.f("ix_outbox_job_id"), "outbox", ["job_id"], schema=SCHEMA)
    op.create_index(
        "ix_outbox_pending", "outbox", ["id"], schema=SCHEMA, postgresql_where=sa.text("delivered_at IS NULL")
    )


def downgrade() -> None:
    op.drop_table("outbox", schema=SCHEMA)
    op.drop_table("jobs", schema=SCHEMA)
