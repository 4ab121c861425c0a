"""lists by keyset (every filter an index range), the stats' rollups, per-notebook retention

Every run gets a queued_at (its place in the lists) that never follows its started_at; the list
indexes become (filter, queued_at, id), built CONCURRENTLY so that the runs table stays writable; the
rollups are filled from the runs already recorded.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from nbp_history.rollups.maintain import FILL_DAILY, FILL_HOURLY
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNS = "notebook_executions"
OLD_INDEXES: dict[str, list[str | sa.ColumnElement[str]]] = {
    "ix_notebook_executions_username_queued_at": ["username", sa.literal_column("queued_at DESC")],
    "ix_notebook_executions_notebook_id_queued_at": ["notebook_id", sa.literal_column("queued_at DESC")],
    "ix_notebook_executions_queued_at": [sa.literal_column("queued_at DESC")],
    "ix_notebook_executions_status": ["status"],
}
NEW_INDEXES: dict[str, list[str | sa.ColumnElement[str]]] = {
    "ix_notebook_executions_queued_at_id": ["queued_at", "id"],
    "ix_notebook_executions_username_queued_at_id": ["username", "queued_at", "id"],
    "ix_notebook_executions_notebook_id_queued_at_id": ["notebook_id", "queued_at", "id"],
    "ix_notebook_executions_status_queued_at_id": ["status", "queued_at", "id"],
    "ix_notebook_executions_started_at_id": ["started_at", "id"],
}
LIVE_INDEX = "ix_notebook_executions_live"
LIVE_CONDITION = "status IN ('queued', 'running')"
ROLLUPS = ("execution_rollups_hourly", "execution_rollups_daily", "execution_rollups_retired")


def _rollup_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("period_start", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("notebook_id", sa.BigInteger(), nullable=True),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("notebook_name", sa.String(length=255), nullable=True),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.Column("timed_runs", sa.BigInteger(), nullable=False),
        sa.Column("execution_time_sum", sa.Double(), nullable=False),
        sa.Column("duration_histogram", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.CheckConstraint(
            "status IN ('cancelled', 'completed', 'failed', 'timed_out')", name=op.f(f"ck_{name}_ended")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        schema="history",
    )
    op.create_index(
        f"ix_{name}_key",
        name,
        ["period_start", "notebook_id", "username", "status"],
        unique=True,
        schema="history",
        postgresql_nulls_not_distinct=True,
    )


def upgrade() -> None:
    runs = f"history.{RUNS}"
    op.execute(f"UPDATE {runs} SET queued_at = coalesce(started_at, created_at) WHERE queued_at IS NULL")
    op.execute(f"UPDATE {runs} SET queued_at = started_at WHERE started_at < queued_at")
    op.alter_column(RUNS, "queued_at", nullable=False, schema="history")
    op.create_check_constraint(
        op.f("ck_notebook_executions_started_after_queued"), RUNS, "started_at >= queued_at", schema="history"
    )
    for name in ROLLUPS:
        _rollup_table(name)
    op.create_table(
        "retention_policies",
        sa.Column("notebook_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column(
            "updated_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("notebook_id", name=op.f("pk_retention_policies")),
        schema="history",
    )
    op.execute(FILL_HOURLY)
    op.execute(FILL_DAILY)
    # Outside a transaction: CONCURRENTLY builds an index without blocking the table's writes.
    with op.get_context().autocommit_block():
        for name, columns in NEW_INDEXES.items():
            op.create_index(name, RUNS, columns, schema="history", postgresql_concurrently=True)
        op.create_index(
            LIVE_INDEX,
            RUNS,
            ["queued_at"],
            schema="history",
            postgresql_where=sa.text(LIVE_CONDITION),
            postgresql_concurrently=True,
        )
        for name in OLD_INDEXES:
            op.drop_index(name, table_name=RUNS, schema="history", postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name, columns in OLD_INDEXES.items():
            op.create_index(name, RUNS, columns, schema="history", postgresql_concurrently=True)
        for name in [*NEW_INDEXES, LIVE_INDEX]:
            op.drop_index(name, table_name=RUNS, schema="history", postgresql_concurrently=True)
    op.drop_table("retention_policies", schema="history")
    for name in ROLLUPS:
        op.drop_table(name, schema="history")
    op.drop_constraint(op.f("ck_notebook_executions_started_after_queued"), RUNS, schema="history")
    op.alter_column(RUNS, "queued_at", nullable=True, schema="history")
