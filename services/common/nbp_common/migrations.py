"""Alembic, one tree per service: each in its own schema with its own version table.

``env.py`` of every service is two lines that call :func:`run_env`; the commands here are what the
``nbp-<service> migrate`` CLI, the dev server and the tests use.
"""

from __future__ import annotations

import asyncio
import functools
import zlib
from dataclasses import dataclass

from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class MigrationTree:
    service: str
    schema: str
    script_location: str  # "package:folder", resolved by Alembic
    metadata: MetaData

    @property
    def command_hint(self) -> str:
        return f"nbp-{self.service} migrate"


class SchemaBehind(RuntimeError):
    """The database's schema is not the one this code was written for."""


def alembic_config(tree: MigrationTree, url: URL | str) -> Config:
    config = Config()
    config.set_main_option("script_location", tree.script_location)
    url_text = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
    # Alembic's config is an ini parser: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", url_text.replace("%", "%%"))
    config.attributes["tree"] = tree
    return config


def upgrade(tree: MigrationTree, url: URL | str, revision: str = "head") -> None:
    command.upgrade(alembic_config(tree, url), revision)


def downgrade(tree: MigrationTree, url: URL | str, revision: str = "base") -> None:
    command.downgrade(alembic_config(tree, url), revision)


@functools.cache
def head_revision(tree: MigrationTree) -> str | None:
    """The head of the tree's scripts: read from disk once per process (the code does not change)."""
    return ScriptDirectory.from_config(alembic_config(tree, "postgresql://")).get_current_head()


async def current_revision(conn: AsyncConnection, tree: MigrationTree) -> str | None:
    exists = await conn.scalar(
        text("SELECT to_regclass(:name) IS NOT NULL"), {"name": f"{tree.schema}.{VERSION_TABLE}"}
    )
    if not exists:
        return None
    version = await conn.scalar(text(f'SELECT version_num FROM "{tree.schema}".{VERSION_TABLE}'))
    return str(version) if version is not None else None


async def check_at_head(conn: AsyncConnection, tree: MigrationTree) -> None:
    """Raise :class:`SchemaBehind`, with the command to run, unless the schema is at this code's head."""
    expected = head_revision(tree)
    found = await current_revision(conn, tree)
    if found != expected:
        state = f"at revision {found}" if found else "not created"
        raise SchemaBehind(
            f"the {tree.service} schema {tree.schema!r} is {state}, this code needs revision {expected}: "
            f"run `{tree.command_hint}` (or `make migrate` locally) and start again"
        )


def _run_in_transaction(connection: Connection, tree: MigrationTree) -> None:
    context.configure(
        connection=connection,
        target_metadata=tree.metadata,
        version_table=VERSION_TABLE,
        version_table_schema=tree.schema,
        include_schemas=True,
        include_name=lambda name, type_, _parent: type_ != "schema" or name == tree.schema,
        compare_type=True,
    )
    with context.begin_transaction():
        # Two processes that start together must not both migrate: serialize on a per-schema lock.
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(tree.schema.encode())}
        )
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{tree.schema}"'))
        context.run_migrations()


async def _run_online(url: str, tree: MigrationTree) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run_in_transaction, tree)
    finally:
        await engine.dispose()


def run_env() -> None:
    """The body of every service's ``env.py``."""
    config = context.config
    tree: MigrationTree = config.attributes["tree"]
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("no database URL in the Alembic configuration")
    if context.is_offline_mode():
        raise RuntimeError("offline (SQL script) migrations are not supported; run against a database")
    asyncio.run(_run_online(url, tree))
