"""Every service's Alembic tree: its own schema and version table, up from empty and down to base, and a
service whose schema is behind refuses to start, saying which command to run."""

import asyncio
import subprocess
import sys
from collections.abc import Sequence

import asyncpg
import httpx
import pytest
from nbp_common import migrations
from nbp_common.app import ServiceSpec
from sqlalchemy.engine import URL

from tests.support.common import app_client, asyncpg_dsn, settings_for


async def tables(url: URL) -> dict[str, set[str]]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
    finally:
        await conn.close()
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row["table_schema"], set()).add(row["table_name"])
    return found


async def test_upgrade_from_empty_and_downgrade_to_base(
    empty_database_url: URL, service_specs: Sequence[ServiceSpec]
) -> None:
    for spec in service_specs:
        await asyncio.to_thread(migrations.upgrade, spec.migrations, empty_database_url)
    found = await tables(empty_database_url)
    assert set(found) == {spec.migrations.schema for spec in service_specs}, (
        "one schema per service, nothing in public"
    )
    assert found["registry"] == {"alembic_version", "notebooks", "notebook_parameters"}
    assert found["history"] == {
        "alembic_version",
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
        "retention_policies",
    }

    for spec in service_specs:
        await asyncio.to_thread(migrations.downgrade, spec.migrations, empty_database_url, "base")
    after = await tables(empty_database_url)
    assert all(names == {"alembic_version"} for names in after.values()), after

    # And up again: the downgrade left nothing behind that would stop a fresh upgrade.
    for spec in service_specs:
        await asyncio.to_thread(migrations.upgrade, spec.migrations, empty_database_url)
    assert await tables(empty_database_url) == found


async def test_models_and_migrations_agree(database_url: URL, service_specs: Sequence[ServiceSpec]) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            for spec in service_specs:
                tree = spec.migrations

                def diff(sync_conn, tree=tree):  # type: ignore[no-untyped-def]
                    context = MigrationContext.configure(
                        sync_conn,
                        opts={
                            "include_schemas": True,
                            "version_table_schema": tree.schema,
                            "include_name": lambda name, kind, _: kind != "schema" or name == tree.schema,
                        },
                    )
                    return compare_metadata(context, tree.metadata)

                assert await conn.run_sync(diff) == [], f"{tree.service}: models differ from migrations"
    finally:
        await engine.dispose()


async def test_an_app_whose_schema_is_behind_refuses_to_start(
    empty_database_url: URL, service_specs: Sequence[ServiceSpec]
) -> None:
    spec = service_specs[0]
    with pytest.raises(migrations.SchemaBehind, match=f"run `nbp-{spec.name} migrate`"):
        async with app_client([spec], settings_for(empty_database_url)):
            pass


def test_the_cli_refuses_to_serve_a_schema_that_is_behind(empty_database_url: URL) -> None:
    env = {"NBP_DATABASE_URL": empty_database_url.render_as_string(hide_password=False), "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", "from nbp_registry.main import cli; cli()", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "run `nbp-registry migrate`" in result.stderr
    assert "not created" in result.stderr


async def test_ready_says_which_schema_is_behind(
    database_url: URL, service_specs: Sequence[ServiceSpec]
) -> None:
    async with app_client(service_specs, settings_for(database_url)) as client:
        assert (await client.get("/ready")).status_code == 200
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        await conn.execute("UPDATE history.alembic_version SET version_num = 'older'")
        await conn.close()
        response: httpx.Response = await client.get("/ready")
        assert response.status_code == 503
        assert response.json()["code"] == "schema_behind"
        assert "nbp-history migrate" in response.json()["detail"]
