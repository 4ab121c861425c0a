"""result rollups: the numbers ended runs recorded, per day, notebook and name (the Experiments
dashboard's "results over time" at a million runs), and what retention removed of them; filled from the
results already recorded

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from nbp_history.rollups.maintain import FILL_RESULTS_DAILY
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLLUPS = ("execution_result_rollups_daily", "execution_result_rollups_retired")


def _result_rollup_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("period_start", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("notebook_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("notebook_name", sa.String(length=255), nullable=True),
        sa.Column("results", sa.BigInteger(), nullable=False),
        sa.Column("value_sum", sa.Double(), nullable=False),
        sa.Column("value_min", sa.Double(), nullable=False),
        sa.Column("value_max", sa.Double(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        schema="history",
    )
    op.create_index(
        f"ix_{name}_key",
        name,
        ["period_start", "notebook_id", "name"],
        unique=True,
        schema="history",
        postgresql_nulls_not_distinct=True,
    )


def upgrade() -> None:
    for name in ROLLUPS:
        _result_rollup_table(name)
    op.execute(FILL_RESULTS_DAILY)


def downgrade() -> None:
    for name in ROLLUPS:
        op.drop_table(name, schema="history")
