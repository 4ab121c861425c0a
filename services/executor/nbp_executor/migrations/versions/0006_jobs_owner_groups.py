"""a job records its owner's realm groups at submit (the shared run record's owner_groups)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from nbp_executor.migrations.ddl import SCHEMA
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "jobs",
        sa.Column(
            "owner_groups", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("jobs", "owner_groups", schema=SCHEMA)
