"""Pooled connections that the server closes (a restart, an idle timeout, an administrator's
``pg_terminate_backend``) are replaced when next checked out, without a ping on every checkout: the
requests after it succeed."""

import asyncio

import asyncpg
import httpx
from sqlalchemy.engine import URL

from tests.support.common import asyncpg_dsn

NOTEBOOK = {"name": "n", "file_path": "n.ipynb", "username": "alice", "tags": [], "metadata": {}}


async def test_connections_the_server_closed_are_replaced_at_checkout(
    registry: httpx.AsyncClient, database_url: URL
) -> None:
    created = await registry.post("/db/notebooks", json=NOTEBOOK)
    assert created.status_code == 201, created.text
    path = f"/db/notebooks/{created.json()['id']}"
    # Several connections in the pool, all idle afterwards.
    assert all(r.status_code == 200 for r in await asyncio.gather(*(registry.get(path) for _ in range(8))))

    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        pooled = await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert pooled
        for row in pooled:
            assert await admin.fetchval("SELECT pg_terminate_backend($1, 5000)", row["pid"])
    finally:
        await admin.close()

    answers = await asyncio.gather(*(registry.get(path) for _ in range(8)))
    assert [r.status_code for r in answers] == [200] * 8, [r.text for r in answers if r.status_code != 200]
    again = await registry.post("/db/notebooks", json={**NOTEBOOK, "name": "m", "file_path": "m.ipynb"})
    assert again.status_code == 201, again.text
