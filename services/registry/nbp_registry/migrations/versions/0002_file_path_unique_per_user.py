"""file_path unique per user

Paths are relative to the owner's folder, so two users may register the same one: the seed's
UNIQUE(file_path) (a rule for absolute paths) becomes UNIQUE(username, file_path).

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


def upgrade() -> None:
    op.drop_constraint("uq_notebooks_file_path", "notebooks", schema="registry", type_="unique")
    op.create_unique_constraint(
        "uq_notebooks_username_file_path", "notebooks", ["username", "file_path"], schema="registry"
    )


def downgrade() -> None:
    # Refused by PostgreSQL while two users share a path: the older rule cannot hold such data.
    op.drop_constraint("uq_notebooks_username_file_path", "notebooks", schema="registry", type_="unique")
    op.create_unique_constraint("uq_notebooks_file_path", "notebooks", ["file_path"], schema="registry")
