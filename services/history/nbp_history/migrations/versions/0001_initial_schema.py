"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notebook_executions",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("notebook_id", sa.BigInteger(), nullable=True),
        sa.Column("notebook_name", sa.String(length=255), nullable=True),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("input_path", sa.String(length=2048), nullable=False),
        sa.Column("output_path", sa.String(length=2048), nullable=True),
        sa.Column("parameters", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("completed_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Double(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column(
            "created_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("queued_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("attempt", sa.Integer(), server_default="1", nullable=False),
        sa.Column("kernel_name", sa.String(length=255), nullable=True),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("input_sha256", sa.String(length=64), nullable=True),
        sa.Column("has_parameters_cell", sa.Boolean(), nullable=True),
        sa.Column("tags", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("error_cell_index", sa.Integer(), nullable=True),
        sa.Column("error_cell_source", sa.Text(), nullable=True),
        sa.Column("error_ename", sa.String(length=255), nullable=True),
        sa.Column("error_evalue", sa.Text(), nullable=True),
        sa.Column("error_traceback", sa.Text(), nullable=True),
        sa.Column(
            "updated_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'completed', 'failed', 'cancelled', 'timed_out')",
            name=op.f("ck_notebook_executions_status_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notebook_executions")),
        schema="history",
    )
    op.create_index(
        "ix_notebook_executions_notebook_id_queued_at",
        "notebook_executions",
        ["notebook_id", sa.literal_column("queued_at DESC")],
        unique=False,
        schema="history",
    )
    op.create_index(
        "ix_notebook_executions_queued_at",
        "notebook_executions",
        [sa.literal_column("queued_at DESC")],
        unique=False,
        schema="history",
    )
    op.create_index(
        op.f("ix_notebook_executions_status"),
        "notebook_executions",
        ["status"],
        unique=False,
        schema="history",
    )
    op.create_index(
        "ix_notebook_executions_username_queued_at",
        "notebook_executions",
        ["username", sa.literal_column("queued_at DESC")],
        unique=False,
        schema="history",
    )
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("execution_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column(
            "received_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_processed_events")),
        schema="history",
    )
    op.create_index(
        op.f("ix_processed_events_execution_id"),
        "processed_events",
        ["execution_id"],
        unique=False,
        schema="history",
    )
    op.create_table(
        "execution_results",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("execution_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value_numeric", sa.Double(), nullable=True),
        sa.Column("value_json", postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), nullable=True),
        sa.Column(
            "recorded_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["history.notebook_executions.id"],
            name=op.f("fk_execution_results_execution_id_notebook_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_results")),
        sa.UniqueConstraint("execution_id", "name", name=op.f("uq_execution_results_execution_id_name")),
        schema="history",
    )
    op.create_index(
        op.f("ix_execution_results_name"), "execution_results", ["name"], unique=False, schema="history"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_execution_results_name"), table_name="execution_results", schema="history")
    op.drop_table("execution_results", schema="history")
    op.drop_index(op.f("ix_processed_events_execution_id"), table_name="processed_events", schema="history")
    op.drop_table("processed_events", schema="history")
    op.drop_index(
        "ix_notebook_executions_username_queued_at", table_name="notebook_executions", schema="history"
    )
    op.drop_index(op.f("ix_notebook_executions_status"), table_name="notebook_executions", schema="history")
    op.drop_index("ix_notebook_executions_queued_at", table_name="notebook_executions", schema="history")
    op.drop_index(
        "ix_notebook_executions_notebook_id_queued_at", table_name="notebook_executions", schema="history"
    )
    op.drop_table("notebook_executions", schema="history")
