"""a recorded number beyond the record's bound (magnitude 1e100, nbp_common.events) moves to value_json,
in the jobs' results and the undelivered events: what an earlier release stored still answers and still
reaches the history, which refuses such a value_numeric

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op
from nbp_executor.migrations.ddl import SCHEMA

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The bound as it was when this revision was written (a revision's effect never changes).
_BEYOND = "jsonb_typeof({r}->'value_numeric') = 'number' AND abs(({r}->'value_numeric')::numeric) > 1e100"


def _moved(results: str) -> str:
    """SQL: the results array with each number beyond the bound moved to value_json, in order."""
    return (
        f"(SELECT jsonb_agg(CASE WHEN {_BEYOND.format(r='r')}"
        " THEN r || jsonb_build_object('value_numeric', NULL, 'value_json', r->'value_numeric') ELSE r END"
        f" ORDER BY n) FROM jsonb_array_elements({results}) WITH ORDINALITY AS e(r, n))"
    )


def _any_beyond(results: str) -> str:
    return f"EXISTS (SELECT FROM jsonb_array_elements({results}) AS e(r) WHERE {_BEYOND.format(r='r')})"


def upgrade() -> None:
    op.execute(
        f"UPDATE {SCHEMA}.jobs SET results = {_moved('results')}"
        f" WHERE jsonb_typeof(results) = 'array' AND {_any_beyond('results')}"
    )
    results = "payload->'results'"
    op.execute(
        f"UPDATE {SCHEMA}.outbox SET payload = jsonb_set(payload, '{{results}}', {_moved(results)})"
        f" WHERE delivered_at IS NULL AND jsonb_typeof({results}) = 'array' AND {_any_beyond(results)}"
    )


def downgrade() -> None:
    # Nothing to undo: the earlier release reads a number in value_json as it reads any JSON value.
    pass
