"""At 100,000 runs, no list and no stats query the API sends scans the runs table sequentially: every
statement the history's app sent to PostgreSQL while serving them (through the ORM or straight through
asyncpg) is explained by PostgreSQL, and each plan is read."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from nbp_common.app import create_app
from nbp_common.auth import AuthSettings
from nbp_history.main import SPEC
from nbp_history.rollups.maintain import FILL_RUN_ROLLUPS
from sqlalchemy import event
from sqlalchemy.engine import URL

from bench._history_runs import load_runs
from tests.support.common import asyncpg_dsn, settings_for

RUNS = 100_000


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


async def test_no_list_or_stats_query_scans_the_runs_table(database_url: URL) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await load_runs(conn, RUNS, days=30)
        for _grain, fill in FILL_RUN_ROLLUPS:
            await conn.execute(fill)
        await conn.execute("VACUUM ANALYZE history.notebook_executions")
        newest_id = await conn.fetchval("SELECT max(id) FROM history.notebook_executions")
    except BaseException:
        await conn.close()
        raise

    now = datetime.now(UTC)
    app = create_app([SPEC], settings_for(database_url), AuthSettings(auth="none"))
    statements: list[tuple[str, Any]] = []
    driven: list[str] = []
    requests: list[tuple[str, dict[str, str | int]]] = [
        ("/db/executions", {}),
        ("/db/executions", {"username": "user7"}),
        ("/db/executions", {"status": "failed"}),
        ("/db/executions", {"status": "running"}),
        ("/db/executions", {"notebook_id": 42}),
        ("/db/executions", {"started_before": (now - timedelta(days=6)).isoformat()}),
        ("/db/executions", {"started_after": (now - timedelta(days=1)).isoformat()}),
        ("/db/executions", {"username": "user3", "status": "completed", "limit": 1000}),
        ("/db/executions/notebook/17", {}),
        ("/db/executions/stats", {}),
        ("/db/executions/stats", {"since": (now - timedelta(days=30)).isoformat()}),
        (
            "/db/executions/stats",
            {"username": "user7", "since": (now - timedelta(days=30, hours=3)).isoformat()},
        ),
        ("/db/executions/stats", {"notebook_id": 5, "until": (now - timedelta(hours=2)).isoformat()}),
    ]
    try:
        async with app.router.lifespan_context(app):
            engine = app.state.database.engine.sync_engine

            def capture(statement: str, parameters: Any) -> None:
                if statement.lstrip().upper().startswith(("SELECT", "WITH")):
                    statements.append((statement, parameters))

            def capture_orm(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
                capture(statement, parameters)

            def capture_driver(query: asyncpg.connection.LoggedQuery) -> None:
                driven.append(query.query)
                capture(query.query, query.args)

            def log_driver_queries(dbapi_connection: Any, *_: Any) -> None:
                # What is sent straight through asyncpg (the list pages), without the ORM's events.
                dbapi_connection.driver_connection.add_query_logger(capture_driver)

            event.listen(engine, "before_cursor_execute", capture_orm)
            event.listen(engine, "checkout", log_driver_queries)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://nbp.test") as client:
                for path, params in requests:
                    response = await client.get(path, params=params)
                    assert response.status_code == 200, (path, params, response.text)
                # A page deep in the list, by cursor.
                deep = await client.get("/db/executions", params={"limit": 1000, "offset": 50_000 - 1000})
                cursor = deep.headers["X-Next-Cursor"]
                page = await client.get("/db/executions", params={"cursor": cursor})
                assert page.json()[0]["id"] == newest_id - 50_000
            event.remove(engine, "before_cursor_execute", capture_orm)
            event.remove(engine, "checkout", log_driver_queries)

        runs_queries = [(s, p) for s, p in statements if "notebook_executions" in s or "rollups" in s]
        assert len(runs_queries) >= len(requests)
        lists = [path for path, _ in requests if not path.endswith("/stats")]
        assert len([s for s in driven if "notebook_executions" in s]) >= len(lists)
        for statement, parameters in runs_queries:
            if "OFFSET" in statement and "49000" in str(parameters):
                continue  # the offset page above only found the cursor: offsets walk, by their nature
            plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {statement}", *(parameters or ()))
            scans = [
                node
                for node in nodes(_parse(plan)[0]["Plan"])
                if node["Node Type"] == "Seq Scan" and node.get("Relation Name") == "notebook_executions"
            ]
            assert not scans, f"sequential scan of the runs table:\n{statement}\n{parameters}\n{plan}"
    finally:
        await conn.close()


def _parse(plan: Any) -> Any:
    import json

    return json.loads(plan) if isinstance(plan, str) else plan


pytestmark = pytest.mark.timeout(600)
