"""a run's schedule and nominal fire time, and a retry's first attempt

New nullable columns without a default: catalog changes only, instant at any table size; the index is
partial (scheduled runs only).

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

SCHEMA = "history"


def upgrade() -> None:
    op.add_column(
        "notebook_executions", sa.Column("schedule_id", sa.BigInteger(), nullable=True), schema=SCHEMA
    )
    op.add_column(
        "notebook_executions",
        sa.Column("fire_time", postgresql.TIMESTAMP(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.add_column("notebook_executions", sa.Column("retry_of", sa.BigInteger(), nullable=True), schema=SCHEMA)
    op.create_index(
        "ix_notebook_executions_schedule_id_fire_time",
        "notebook_executions",
        ["schedule_id", "fire_time"],
        schema=SCHEMA,
        postgresql_where=sa.text("schedule_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_notebook_executions_schedule_id_fire_time", table_name="notebook_executions", schema=SCHEMA
    )
    for column in ("retry_of", "fire_time", "schedule_id"):
        op.drop_column("notebook_executions", column, schema=SCHEMA)
