"""The executor's data migrations: what an earlier release stored is brought within today's rules, so
that it still answers and still reaches the history."""

import asyncio
import json

import asyncpg
from nbp_common import migrations
from nbp_common.events import RecordedResult
from nbp_executor.main import SPEC
from sqlalchemy.engine import URL

from tests.support.common import asyncpg_dsn


async def test_recorded_numbers_beyond_the_bound_move_to_value_json(empty_database_url: URL) -> None:
    await asyncio.to_thread(migrations.upgrade, SPEC.migrations, empty_database_url, "0007")
    stored = [
        {"name": "large", "value_numeric": 1e250, "value_json": None},
        {"name": "fine", "value_numeric": 1e100, "value_json": None},
        {"name": "negative", "value_numeric": -1e101, "value_json": None},
        {"name": "text", "value_numeric": None, "value_json": "x"},
    ]
    conn = await asyncpg.connect(asyncpg_dsn(empty_database_url))
    try:
        job_id = await conn.fetchval(
            "INSERT INTO executor.jobs (username, input_path, output_path, kernel_name, timeout_seconds,"
            " results) VALUES ('ann', 'a.ipynb', 'out.ipynb', 'python3', 60, $1::jsonb) RETURNING id",
            json.dumps(stored),
        )
        for delivered in ("NULL", "now()"):
            await conn.execute(
                "INSERT INTO executor.outbox (event_id, job_id, payload, delivered_at)"
                f" VALUES (gen_random_uuid(), $1, $2::jsonb, {delivered})",
                job_id,
                json.dumps({"execution_id": job_id, "results": stored}),
            )
        await asyncio.to_thread(migrations.upgrade, SPEC.migrations, empty_database_url)

        # jsonb keeps the decimals the JSON numbers denote: read back, they are ints
        expected = [
            {"name": "large", "value_numeric": None, "value_json": 10**250},
            {"name": "fine", "value_numeric": 10**100, "value_json": None},
            {"name": "negative", "value_numeric": None, "value_json": -(10**101)},
            {"name": "text", "value_numeric": None, "value_json": "x"},
        ]
        results = json.loads(await conn.fetchval("SELECT results FROM executor.jobs"))
        pending, delivered = (
            json.loads(row["payload"])["results"]
            for row in await conn.fetch(
                "SELECT payload FROM executor.outbox ORDER BY delivered_at NULLS FIRST"
            )
        )
    finally:
        await conn.close()
    assert results == pending == expected
    assert all(RecordedResult.model_validate(result) for result in results)
    assert delivered[0]["value_numeric"] == 10**250, "what the history has is left as it was"
