"""the prototype's column names (parameters_used, execution_time_seconds); the owner's groups

Both are catalog changes only: a rename, and a column whose default is a constant, which PostgreSQL
stores once instead of writing it into every row. Instant at any table size.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RENAMES = {"parameters": "parameters_used", "duration_seconds": "execution_time_seconds"}


def upgrade() -> None:
    for old, new in RENAMES.items():
        op.alter_column("notebook_executions", old, new_column_name=new, schema="history")
    op.add_column(
        "notebook_executions",
        sa.Column(
            "owner_groups", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        schema="history",
    )


def downgrade() -> None:
    op.drop_column("notebook_executions", "owner_groups", schema="history")
    for old, new in RENAMES.items():
        op.alter_column("notebook_executions", new, new_column_name=old, schema="history")
