"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notebooks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("file_path", sa.String(length=1024), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("tags", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column(
            "created_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column(
            "updated_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notebooks")),
        sa.UniqueConstraint("file_path", name=op.f("uq_notebooks_file_path")),
        sa.UniqueConstraint("name", "username", name=op.f("uq_notebooks_name_username")),
        schema="registry",
    )
    op.create_index(
        op.f("ix_notebooks_tags"),
        "notebooks",
        ["tags"],
        unique=False,
        schema="registry",
        postgresql_using="gin",
        postgresql_with={"fastupdate": "off"},
    )
    op.create_index(op.f("ix_notebooks_username"), "notebooks", ["username"], unique=False, schema="registry")
    op.create_table(
        "notebook_parameters",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("notebook_id", sa.BigInteger(), nullable=False),
        sa.Column("param_name", sa.String(length=255), nullable=False),
        sa.Column("param_type", sa.String(length=16), nullable=False),
        sa.Column("default_value", postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("required", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "validation_rules", postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), nullable=True
        ),
        sa.Column(
            "created_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column(
            "updated_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "param_type IN ('str', 'int', 'float', 'bool', 'list', 'dict', 'date', 'datetime')",
            name=op.f("ck_notebook_parameters_param_type_known"),
        ),
        sa.ForeignKeyConstraint(
            ["notebook_id"],
            ["registry.notebooks.id"],
            name=op.f("fk_notebook_parameters_notebook_id_notebooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notebook_parameters")),
        sa.UniqueConstraint(
            "notebook_id", "param_name", name=op.f("uq_notebook_parameters_notebook_id_param_name")
        ),
        schema="registry",
    )


def downgrade() -> None:
    op.drop_table("notebook_parameters", schema="registry")
    op.drop_index(op.f("ix_notebooks_username"), table_name="notebooks", schema="registry")
    op.drop_index(
        op.f("ix_notebooks_tags"), table_name="notebooks", schema="registry", postgresql_using="gin"
    )
    op.drop_table("notebooks", schema="registry")
