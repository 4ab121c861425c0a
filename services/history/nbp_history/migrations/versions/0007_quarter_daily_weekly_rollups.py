"""six-hourly and weekly run rollups: the stats over a window read its whole weeks, then whole days, then
whole six hours, then hours, instead of every day and every hour at its edges; filled from the hourly and
daily rollups

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from nbp_history.rollups.maintain import FILL_QUARTER_DAILY, FILL_WEEKLY
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLLUPS = ("execution_rollups_quarter_daily", "execution_rollups_weekly")


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
    for name in ROLLUPS:
        _rollup_table(name)
    # Intake waits until this commits, so the new rollups start from exactly what the others count.
    op.execute("LOCK TABLE history.execution_rollups_hourly, history.execution_rollups_daily IN SHARE MODE")
    op.execute(FILL_QUARTER_DAILY)
    op.execute(FILL_WEEKLY)


def downgrade() -> None:
    for name in ROLLUPS:
        op.drop_table(name, schema="history")
