"""The read-only role the history's migration creates (``history_reader``): a login role in it (as Superset's
``superset_ro`` is) reads the history's tables and can write, create, change or drop nothing in any of the
platform's schemas."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import URL

from tests.support.common import asyncpg_dsn

READER = "history_reader"

# Each statement a reader must be refused, one per kind of change, in every platform schema.
REFUSED = [
    "INSERT INTO history.notebook_executions (id, username, input_path, status) "
    "VALUES (1, 'x', 'x.ipynb', 'queued')",
    "UPDATE history.notebook_executions SET status = 'failed'",
    "DELETE FROM history.notebook_executions",
    "TRUNCATE history.execution_results",
    "INSERT INTO history.execution_results (execution_id, name) VALUES (1, 'x')",
    "UPDATE history.alembic_version SET version_num = 'x'",
    "CREATE TABLE history.intruder (id int)",
    "CREATE VIEW history.intruder AS SELECT 1",
    "CREATE INDEX intruder ON history.notebook_executions (username)",
    "ALTER TABLE history.notebook_executions ADD COLUMN intruder int",
    "ALTER TABLE history.notebook_executions DROP COLUMN error_message",
    "DROP TABLE history.notebook_executions",
    "DROP TABLE history.execution_results",
    "DROP SCHEMA history CASCADE",
    "UPDATE history.execution_rollups_daily SET runs = 0",
    "DELETE FROM history.execution_rollups_hourly",
    "INSERT INTO history.retention_policies (notebook_id, retention_days) VALUES (1, 1)",
    "DROP TABLE history.execution_rollups_retired",
    "UPDATE history.execution_result_rollups_daily SET results = 0",
    "DELETE FROM history.execution_result_rollups_retired",
    "CREATE TABLE registry.intruder (id int)",
    "INSERT INTO registry.notebooks (name) VALUES ('x')",
    "UPDATE registry.notebooks SET name = 'x'",
    "DELETE FROM registry.notebooks",
    "TRUNCATE registry.notebooks",
    "ALTER TABLE registry.notebooks ADD COLUMN intruder int",
    "DROP TABLE registry.notebooks",
    "DROP SCHEMA registry CASCADE",
    "CREATE TABLE executor.intruder (id int)",
    "INSERT INTO executor.jobs (username) VALUES ('x')",
    "UPDATE executor.jobs SET status = 'failed'",
    "DELETE FROM executor.jobs",
    "TRUNCATE executor.outbox",
    "DROP TABLE executor.jobs",
    "DROP SCHEMA executor CASCADE",
    "CREATE TABLE public.intruder (id int)",
    "CREATE FUNCTION public.intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "DROP SCHEMA public CASCADE",
    "CREATE SCHEMA intruder",
    "SELECT * FROM registry.notebooks",
    "SELECT * FROM executor.jobs",
]


@pytest.fixture
async def reader(pg_admin_url: URL, database_url: URL) -> AsyncIterator[asyncpg.Connection]:
    """A connection as a fresh login role that is a member of the reader role, like ``superset_ro``."""
    role = f"reader_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'reader' IN ROLE {READER}")
        conn = await asyncpg.connect(asyncpg_dsn(database_url.set(username=role, password="reader")))
        try:
            yield conn
        finally:
            await conn.close()
    finally:
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()


async def test_the_reader_reads_every_history_table(reader: asyncpg.Connection) -> None:
    for table in (
        "notebook_executions",
        "execution_results",
        "processed_events",
        "execution_rollups_hourly",
        "execution_rollups_quarter_daily",
        "execution_rollups_daily",
        "execution_rollups_weekly",
        "execution_rollups_retired",
        "execution_result_rollups_daily",
        "execution_result_rollups_retired",
    ):
        assert await reader.fetchval(f"SELECT count(*) FROM history.{table}") == 0


@pytest.mark.parametrize("statement", REFUSED)
async def test_the_reader_can_change_nothing(reader: asyncpg.Connection, statement: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await reader.execute(statement)


async def test_tables_created_later_are_readable_too(database_url: URL, reader: asyncpg.Connection) -> None:
    # The default privileges of the schema's owner (the role that migrates) cover the next migration.
    owner = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await owner.execute("CREATE TABLE history.later_rollup (day date)")
    finally:
        await owner.close()
    assert await reader.fetchval("SELECT count(*) FROM history.later_rollup") == 0
