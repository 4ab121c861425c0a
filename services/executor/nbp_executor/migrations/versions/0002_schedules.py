"""schedules and their fires (the claim of a fire time); a job records its schedule and fire time

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from nbp_executor.migrations import ddl
from nbp_executor.migrations.ddl import SCHEMA
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("notebook_id", sa.BigInteger(), nullable=True),
        sa.Column("notebook_name", sa.String(length=255), nullable=True),
        sa.Column("notebook_path", sa.String(length=2048), nullable=False),
        sa.Column("cron", sa.String(length=255), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("parameters", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column(
            "run_parameters", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("kernel_name", sa.String(length=255), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("catch_up", sa.String(length=16), server_default="none", nullable=False),
        sa.Column("max_concurrent", sa.Integer(), server_default="1", nullable=False),
        sa.Column("overlap", sa.String(length=16), server_default="skip", nullable=False),
        ddl.timestamp("next_fire_at"),
        ddl.timestamp("created_at", nullable=False, default="now()"),
        ddl.timestamp("updated_at", nullable=False, default="now()"),
        sa.CheckConstraint("catch_up IN ('none', 'latest')", name=op.f("ck_schedules_catch_up_known")),
        sa.CheckConstraint("overlap IN ('skip')", name=op.f("ck_schedules_overlap_known")),
        sa.CheckConstraint("max_concurrent >= 1", name=op.f("ck_schedules_max_concurrent_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_schedules_due", "schedules", ["next_fire_at"], schema=SCHEMA, postgresql_where=sa.text("enabled")
    )
    op.create_index(op.f("ix_schedules_username"), "schedules", ["username"], schema=SCHEMA)
    op.create_table(
        "schedule_fires",
        sa.Column("schedule_id", sa.BigInteger(), nullable=False),
        ddl.timestamp("fire_time", nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        ddl.timestamp("fired_at", nullable=False, default="clock_timestamp()"),
        sa.CheckConstraint("outcome IN ('queued', 'skipped')", name=op.f("ck_schedule_fires_outcome_known")),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            [f"{SCHEMA}.schedules.id"],
            name=op.f("fk_schedule_fires_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("schedule_id", "fire_time", name=op.f("pk_schedule_fires")),
        schema=SCHEMA,
    )
    op.add_column("jobs", sa.Column("schedule_id", sa.BigInteger(), nullable=True), schema=SCHEMA)
    op.add_column("jobs", ddl.timestamp("fire_time"), schema=SCHEMA)
    op.create_index(
        "ix_jobs_schedule_id",
        "jobs",
        ["schedule_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("schedule_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_schedule_id", table_name="jobs", schema=SCHEMA)
    op.drop_column("jobs", "fire_time", schema=SCHEMA)
    op.drop_column("jobs", "schedule_id", schema=SCHEMA)
    op.drop_table("schedule_fires", schema=SCHEMA)
    op.drop_table("schedules", schema=SCHEMA)
