"""run resources: the CPU and memory a run asked for (the kubernetes runner's pod; null: the defaults)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "executor"


def upgrade() -> None:
    op.add_column(
        "jobs", sa.Column("resources", postgresql.JSONB(astext_type=sa.Text()), nullable=True), schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_column("jobs", "resources", schema=SCHEMA)
