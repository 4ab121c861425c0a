"""the prototype's column names: parameters_used, execution_time_seconds

A rename only: PostgreSQL changes the catalog, not the rows, so this is instant at any table size.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RENAMES = {"parameters": "parameters_used", "duration_seconds": "execution_time_seconds"}


def upgrade() -> None:
    for old, new in RENAMES.items():
        op.alter_column("notebook_executions", old, new_column_name=new, schema="history")


def downgrade() -> None:
    for old, new in RENAMES.items():
        op.alter_column("notebook_executions", new, new_column_name=old, schema="history")
