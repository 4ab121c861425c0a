"""The executor's lifecycle events: recorded exactly once, in any order, never undoing a terminal state."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def event(execution_id: int, status: str, **fields: object) -> dict:
    body: dict = {
        "event_id": str(uuid.uuid4()),
        "execution_id": execution_id,
        "status": status,
        "attempt": 1,
        "occurred_at": T0.isoformat(),
        "notebook_id": 7,
        "notebook_name": "forecast",
        "username": "alice",
        "input_path": "alice/forecast.ipynb",
        "parameters_used": {"alpha": 0.5},
        "kernel_name": "python3",
        "input_sha256": "ab" * 32,
        "queued_at": T0.isoformat(),
        "owner_groups": ["data-scientists"],
    }
    if status != "queued":
        body["started_at"] = (T0 + timedelta(seconds=1)).isoformat()
        body["worker"] = "host:1:0"
    if status in ("completed", "failed", "cancelled", "timed_out"):
        body["completed_at"] = (T0 + timedelta(seconds=4)).isoformat()
        body["execution_time_seconds"] = 3.0
    body.update(fields)
    return body


async def send(history: httpx.AsyncClient, body: dict) -> str:
    response = await history.post("/internal/events", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["outcome"])


async def test_a_run_in_order_ends_complete_with_its_results(history: httpx.AsyncClient) -> None:
    assert await send(history, event(1, "queued")) == "applied"
    assert await send(history, event(1, "running")) == "applied"
    done = event(
        1,
        "completed",
        output_path="alice/outputs/forecast-1.ipynb",
        results=[
            {"name": "accuracy", "value_numeric": 0.93},
            {"name": "confusion", "value_json": [[1, 2], [3, 4]]},
        ],
    )
    assert await send(history, done) == "applied"

    record = (await history.get("/db/executions/1")).json()
    assert record["status"] == "completed"
    assert record["notebook_name"] == "forecast"
    assert record["parameters_used"] == {"alpha": 0.5}
    assert record["execution_time_seconds"] == 3.0
    assert record["owner_groups"] == ["data-scientists"]
    assert record["output_path"] == "alice/outputs/forecast-1.ipynb"
    assert record["error"] is None
    assert {r["name"]: (r["value_numeric"], r["value_json"]) for r in record["results"]} == {
        "accuracy": (0.93, None),
        "confusion": (None, [[1, 2], [3, 4]]),
    }
    results = (await history.get("/db/executions/1/results")).json()
    assert [r["name"] for r in results] == ["accuracy", "confusion"]


async def test_our_earlier_names_are_accepted_in_events_and_answered_as_aliases(
    history: httpx.AsyncClient,
) -> None:
    legacy = event(9, "completed")
    legacy["parameters"] = legacy.pop("parameters_used")
    legacy["duration_seconds"] = legacy.pop("execution_time_seconds")
    assert await send(history, legacy) == "applied"
    record = (await history.get("/db/executions/9")).json()
    assert record["parameters_used"] == record["parameters"] == {"alpha": 0.5}
    assert record["execution_time_seconds"] == record["duration_seconds"] == 3.0
    listed = (await history.get("/db/executions")).json()[0]
    assert (listed["parameters"], listed["duration_seconds"]) == ({"alpha": 0.5}, 3.0)


async def test_an_event_with_both_names_of_a_field_is_refused(history: httpx.AsyncClient) -> None:
    response = await history.post("/internal/events", json={**event(10, "queued"), "parameters": {}})
    assert response.status_code == 422
    assert "parameters" in {e["field"] for e in response.json()["errors"]}


async def test_the_same_event_twice_is_applied_once(history: httpx.AsyncClient) -> None:
    done = event(2, "completed", results=[{"name": "n", "value_numeric": 1}])
    assert await send(history, done) == "applied"
    assert await send(history, done) == "duplicate"
    assert (await history.get("/db/executions")).headers["X-Total-Count"] == "1"
    assert len((await history.get("/db/executions/2/results")).json()) == 1


async def test_a_late_running_never_overwrites_a_terminal_state(history: httpx.AsyncClient) -> None:
    assert await send(history, event(3, "completed")) == "applied"
    assert await send(history, event(3, "running", worker="late")) == "stale"
    assert await send(history, event(3, "queued")) == "stale"
    assert await send(history, event(3, "failed", error_message="nope")) == "stale"
    record = (await history.get("/db/executions/3")).json()
    assert record["status"] == "completed"
    assert record["worker"] == "host:1:0"
    assert record["error_message"] is None


async def test_a_retry_supersedes_the_previous_attempt(history: httpx.AsyncClient) -> None:
    await send(history, event(4, "running"))
    await send(history, event(4, "queued", attempt=2, started_at=None, worker=None))
    assert (await history.get("/db/executions/4")).json()["status"] == "queued"
    assert await send(history, event(4, "running", attempt=1)) == "stale"
    assert await send(history, event(4, "completed", attempt=2)) == "applied"
    record = (await history.get("/db/executions/4")).json()
    assert (record["status"], record["attempt"]) == ("completed", 2)


async def test_a_failure_records_the_cell_and_the_exception(history: httpx.AsyncClient) -> None:
    failure = event(
        5,
        "failed",
        error_message="ZeroDivisionError in cell 2",
        error={
            "cell_index": 2,
            "cell_source": "1 / 0",
            "ename": "ZeroDivisionError",
            "evalue": "division by zero",
            "traceback": "Traceback (most recent call last): ...",
        },
    )
    await send(history, failure)
    record = (await history.get("/db/executions/5")).json()
    assert record["status"] == "failed"
    assert record["error"] == failure["error"]


async def test_concurrent_events_of_one_run_settle_on_the_terminal_one(history: httpx.AsyncClient) -> None:
    bodies = [event(6, "queued"), event(6, "running"), event(6, "completed")] * 3
    outcomes = await asyncio.gather(*(send(history, body) for body in reversed(bodies)))
    assert "applied" in outcomes
    assert (await history.get("/db/executions/6")).json()["status"] == "completed"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "exploded"}, "status"),
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"execution_id": 0}, "execution_id"),
        ({"username": ""}, "username"),
        ({"input_sha256": "xyz"}, "input_sha256"),
        ({"results": [{"value_numeric": 1}]}, "results[0].name"),
    ],
)
async def test_malformed_events_are_422_and_record_nothing(
    history: httpx.AsyncClient, change: dict, field: str
) -> None:
    response = await history.post("/internal/events", json={**event(8, "queued"), **change})
    assert response.status_code == 422
    assert field in {e["field"] for e in response.json()["errors"]}
    assert (await history.get("/db/executions/8")).status_code == 404
