"""A list page is rendered to JSON by PostgreSQL (nbp_history.runs.queries): it says what the records
serialized by the API's model say, field for field and in the same order, for awkward values: nulls,
unicode and escapes, nested parameters, numbers of every shape, timestamps given in other time zones or
on a whole second, error text, a duration that is not finite."""

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx
from nbp_common.db import Database
from nbp_history.main import SPEC as HISTORY
from nbp_history.models import Execution
from nbp_history.runs.schemas import ExecutionRecord
from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.engine import URL

from tests.support.common import app_client, asyncpg_dsn, settings_for

NOW = datetime.now(UTC).replace(microsecond=123456)
AWKWARD = 'Zürich ✓ 日本語 🚀 "quoted" \\back\\slash\n\ttabbed \u2028 </script>'
PARAMETERS = {
    "nested": {"list": [1, 2.5, None, True, "x"], "empty": {}, "deep": {"a": [[], [{}]]}},
    "big": 2**53 + 1,
    "tiny": 1e-7,
    "huge": 1.5e300,
    "whole": 3.0,
    "negative": -0.0,
    "text": AWKWARD,
}
DATETIME_FIELDS = {
    name for name, field in ExecutionRecord.model_fields.items() if "datetime" in str(field.annotation)
}


async def post(history: httpx.AsyncClient, execution_id: int, **fields: Any) -> None:
    queued = NOW - timedelta(minutes=execution_id)
    body = {
        "event_id": str(uuid.uuid4()),
        "execution_id": execution_id,
        "status": "completed",
        "occurred_at": queued.isoformat(),
        "username": "alice",
        "input_path": "nb.ipynb",
        "queued_at": queued.isoformat(),
        **fields,
    }
    response = await history.post("/internal/events", json=body)
    assert response.json()["outcome"] == "applied", response.text


def normalized(body: str) -> list[dict[str, Any]]:
    """The records with their timestamps as datetimes (the same instant may be written two ways)."""
    records: list[dict[str, Any]] = json.loads(body)
    for record in records:
        for name in DATETIME_FIELDS:
            if record[name] is not None:
                record[name] = datetime.fromisoformat(record[name])
    return records


async def test_the_page_postgresql_renders_is_the_models_page(database_url: URL) -> None:
    # The database's sessions in another time zone than UTC, as a server's may be.
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(f"ALTER DATABASE \"{database_url.database}\" SET timezone TO 'America/St_Johns'")
    finally:
        await conn.close()
    async with app_client([HISTORY], settings_for(database_url)) as history:
        await _compare(history, database_url)


async def _compare(history: httpx.AsyncClient, database_url: URL) -> None:
    # Everything a record can hold, each field in an awkward shape.
    kolkata = timezone(timedelta(hours=5, minutes=30))
    await post(
        history,
        1,
        notebook_id=2**62,
        notebook_name=AWKWARD[:255],
        output_path="outputs/ü b/ç.ipynb",
        parameters_used=PARAMETERS,
        kernel_name="python3",
        worker="worker-ü",
        input_sha256="0" * 64,
        has_parameters_cell=False,
        tags=["ü", "", 'a"b'],
        owner_groups=["/data-science", "/ünïcode"],
        queued_at=(NOW - timedelta(hours=2)).astimezone(kolkata).isoformat(),
        started_at=(NOW - timedelta(hours=1)).astimezone(kolkata).isoformat(),
        completed_at=NOW.replace(microsecond=0).isoformat(),
        execution_time_seconds=3.0,
        error_message=AWKWARD,
        schedule_id=7,
        fire_time=NOW.replace(second=0, microsecond=0).isoformat(),
        retry_of=1,
        attempt=3,
    )
    await post(history, 2, status="failed", execution_time_seconds=1e-7, error_message="")
    await post(history, 3, status="queued")  # nulls wherever a record may have them
    await post(history, 4, execution_time_seconds=0.1 + 0.2)
    await post(history, 5, execution_time_seconds=123456789.125)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        # Not finite: no event carries it, but a restored row may; pydantic writes it as null.
        await conn.execute(
            "UPDATE history.notebook_executions SET execution_time_seconds = 'Infinity' WHERE id = 5"
        )
    finally:
        await conn.close()

    response = await history.get("/db/executions", params={"limit": 100})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"

    database = Database(settings_for(database_url))
    try:
        async with database.sessionmaker() as session:
            rows = (
                await session.scalars(
                    select(Execution).order_by(Execution.queued_at.desc(), Execution.id.desc())
                )
            ).all()
            adapter = TypeAdapter(list[ExecutionRecord])
            expected = adapter.dump_json(adapter.validate_python(rows, from_attributes=True)).decode()
    finally:
        await database.dispose()

    assert [r["id"] for r in json.loads(expected)] == [2, 3, 4, 5, 1]
    assert [list(r) for r in json.loads(response.text)] == [list(r) for r in json.loads(expected)]
    assert normalized(response.text) == normalized(expected)
    # What a client reads back through the model is the same too.
    assert adapter.validate_json(response.text) == adapter.validate_json(expected)
    first = json.loads(response.text)[-1]
    assert first["parameters_used"] == first["parameters"]
    assert first["parameters_used"]["nested"] == PARAMETERS["nested"]
    assert first["parameters_used"]["text"] == AWKWARD
    assert first["error_message"] == AWKWARD
    assert first["queued_at"] == (NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert json.loads(response.text)[3]["execution_time_seconds"] is None  # the infinite one


async def test_an_empty_page_is_an_empty_array(history: httpx.AsyncClient) -> None:
    response = await history.get("/db/executions", params={"username": "nobody"})
    assert response.status_code == 200
    assert response.text == "[]"
    assert response.headers["X-Total-Count"] == "0"
    assert response.headers["X-Total-Count-Estimated"] == "false"
    assert "X-Next-Cursor" not in response.headers
