"""a schedule keeps its owner's realm groups, which the runs it fires record (jobs.owner_groups)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from nbp_executor.migrations.ddl import SCHEMA
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "schedules",
        sa.Column(
            "owner_groups", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("schedules", "owner_groups", schema=SCHEMA)
