"""a read-only role on the history's tables (Superset's dashboards read through it)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

``history_reader`` is a group role without login: USAGE on the schema and SELECT on every table, the
tables this schema's owner creates later included (default privileges). A login role is made a member of
it: ``superset_ro`` (the chart's CloudNativePG roles; ``nbp-superset`` locally). Where the migrating role
may not create roles (the chart: the schema's owner), the role is created beforehand and left as it is.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READER = "history_reader"
SCHEMA = "history"


def upgrade() -> None:
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER}') THEN
                CREATE ROLE {READER} NOLOGIN;
            END IF;
        END
        $$
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {READER}")
    op.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO {READER}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {SCHEMA} GRANT SELECT ON TABLES TO {READER}")


def downgrade() -> None:
    # The role itself stays: it is shared by every database of the server, and may be the operator's.
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {SCHEMA} REVOKE SELECT ON TABLES FROM {READER}")
    op.execute(f"REVOKE SELECT ON ALL TABLES IN SCHEMA {SCHEMA} FROM {READER}")
    op.execute(f"REVOKE USAGE ON SCHEMA {SCHEMA} FROM {READER}")
