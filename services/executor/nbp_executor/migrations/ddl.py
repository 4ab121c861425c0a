"""The pieces the executor's revisions build tables from, written once (names follow the models'
naming convention: ``pk_<table>``, ``fk_<table>_<column>_<target>``, ``ck_<table>_<name>``,
``ix_<table>_<column>``)."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

SCHEMA = "executor"


def timestamp(name: str, *, nullable: bool = True, default: str | None = None) -> sa.Column:  # type: ignore[type-arg]
    """A ``timestamptz`` column; ``default`` a server-side expression such as ``now()``."""
    return sa.Column(
        name,
        postgresql.TIMESTAMP(timezone=True),
        server_default=sa.text(default) if default else None,
        nullable=nullable,
    )


def identity() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False)


def primary_key(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*(columns or ("id",)), name=op.f(f"pk_{table}"))


def known(table: str, column: str, values: Iterable[str]) -> sa.CheckConstraint:
    """``column`` holds one of ``values`` (an enum's)."""
    listed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=op.f(f"ck_{table}_{column}_known"))


def cascade_to(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    """``column`` refers to ``target``'s id; its rows go with the target's."""
    return sa.ForeignKeyConstraint(
        [column], [f"{SCHEMA}.{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def index_on(table: str, column: str) -> None:
    op.create_index(op.f(f"ix_{table}_{column}"), table, [column], schema=SCHEMA)
