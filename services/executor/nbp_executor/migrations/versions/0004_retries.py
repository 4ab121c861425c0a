"""retries: a job's retry policy, the first attempt's id and its not-before time; a schedule's policy

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from nbp_executor.migrations.ddl import SCHEMA
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _policy(table: str) -> None:
    op.add_column(
        table, sa.Column("retry_max", sa.Integer(), server_default="0", nullable=False), schema=SCHEMA
    )
    op.add_column(
        table,
        sa.Column("retry_backoff_seconds", sa.Double(), server_default="60", nullable=False),
        schema=SCHEMA,
    )
    op.add_column(
        table,
        sa.Column("retry_on", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        schema=SCHEMA,
    )


def upgrade() -> None:
    _policy("jobs")
    _policy("schedules")
    op.add_column("jobs", sa.Column("retry_of", sa.BigInteger(), nullable=True), schema=SCHEMA)
    op.add_column(
        "jobs", sa.Column("not_before", postgresql.TIMESTAMP(timezone=True), nullable=True), schema=SCHEMA
    )
    op.create_index(
        "ix_jobs_retry_of",
        "jobs",
        ["retry_of"],
        schema=SCHEMA,
        postgresql_where=sa.text("retry_of IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_retry_of", table_name="jobs", schema=SCHEMA)
    for column in ("not_before", "retry_of"):
        op.drop_column("jobs", column, schema=SCHEMA)
    for table in ("schedules", "jobs"):
        for column in ("retry_on", "retry_backoff_seconds", "retry_max"):
            op.drop_column(table, column, schema=SCHEMA)
