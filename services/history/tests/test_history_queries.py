"""The record's queries: filters, newest first, pagination, stats."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from nbp_history.rollups.histogram import RELATIVE_ERROR

NOW = datetime.now(UTC)


async def record(
    history: httpx.AsyncClient,
    execution_id: int,
    status: str,
    *,
    username: str = "alice",
    notebook_id: int = 1,
    minutes_ago: float = 10,
    duration: float | None = None,
) -> None:
    queued = NOW - timedelta(minutes=minutes_ago)
    body = {
        "event_id": str(uuid.uuid4()),
        "execution_id": execution_id,
        "status": status,
        "occurred_at": queued.isoformat(),
        "notebook_id": notebook_id,
        "notebook_name": f"notebook {notebook_id}",
        "username": username,
        "input_path": "nb.ipynb",
        "queued_at": queued.isoformat(),
        "started_at": (queued + timedelta(seconds=1)).isoformat() if status != "queued" else None,
        "execution_time_seconds": duration,
    }
    response = await history.post("/internal/events", json=body)
    assert response.json()["outcome"] == "applied"


@pytest.fixture
async def runs(history: httpx.AsyncClient) -> None:
    await record(history, 1, "completed", minutes_ago=50, duration=1.0)
    await record(history, 2, "completed", minutes_ago=40, duration=2.0)
    await record(history, 3, "failed", minutes_ago=30, duration=5.0)
    await record(history, 4, "completed", minutes_ago=20, duration=3.0, notebook_id=2, username="bob")
    await record(history, 5, "running", minutes_ago=10, notebook_id=2, username="bob")
    await record(history, 6, "completed", minutes_ago=60 * 24 * 30, duration=100.0)


async def test_list_is_newest_first_with_a_total(history: httpx.AsyncClient, runs: None) -> None:
    response = await history.get("/db/executions")
    assert [r["id"] for r in response.json()] == [5, 4, 3, 2, 1, 6]
    assert response.headers["X-Total-Count"] == "6"
    page = await history.get("/db/executions", params={"limit": 2, "offset": 1})
    assert [r["id"] for r in page.json()] == [4, 3]


async def test_filters(history: httpx.AsyncClient, runs: None) -> None:
    async def ids(**params: str | int) -> list[int]:
        return [r["id"] for r in (await history.get("/db/executions", params=params)).json()]

    assert await ids(username="bob") == [5, 4]
    assert await ids(notebook_id=2) == [5, 4]
    assert await ids(status="completed") == [4, 2, 1, 6]
    after = (NOW - timedelta(minutes=35)).isoformat()
    before = (NOW - timedelta(minutes=15)).isoformat()
    assert await ids(started_after=after) == [5, 4, 3]
    assert await ids(started_after=after, started_before=before) == [4, 3]
    notebook_route = await history.get("/db/executions/notebook/2")
    assert [r["id"] for r in notebook_route.json()] == [5, 4]


async def test_stats_over_the_default_window(history: httpx.AsyncClient, runs: None) -> None:
    stats = (await history.get("/db/executions/stats")).json()
    assert stats["total"] == 5  # the run of a month ago is outside the 7-day window
    assert stats["by_status"] == {
        "queued": 0,
        "running": 1,
        "completed": 3,
        "failed": 1,
        "cancelled": 0,
        "timed_out": 0,
    }
    assert stats["success_rate"] == pytest.approx(3 / 4)
    per_notebook = {n["notebook_id"]: n for n in stats["notebooks"]}
    first = per_notebook[1]
    assert (first["total"], first["completed"], first["failed"]) == (3, 2, 1)
    assert first["success_rate"] == pytest.approx(2 / 3)
    # Nearest-rank percentiles of the completed runs' durations (1.0 and 2.0), from the rollups'
    # histograms: within their stated error.
    assert first["p50_duration_seconds"] == pytest.approx(1.0, rel=RELATIVE_ERROR)
    assert first["p95_duration_seconds"] == pytest.approx(2.0, rel=RELATIVE_ERROR)
    assert per_notebook[2]["success_rate"] == 1.0


async def test_stats_window_and_filters(history: httpx.AsyncClient, runs: None) -> None:
    since = (NOW - timedelta(days=60)).isoformat()
    everything = (await history.get("/db/executions/stats", params={"since": since})).json()
    assert everything["total"] == 6
    bob = (await history.get("/db/executions/stats", params={"username": "bob"})).json()
    assert bob["total"] == 2
    empty = (await history.get("/db/executions/stats", params={"username": "nobody"})).json()
    assert (empty["total"], empty["success_rate"], empty["notebooks"]) == (0, None, [])


async def test_stats_times_without_a_zone_are_utc(history: httpx.AsyncClient, runs: None) -> None:
    since, until = NOW - timedelta(days=60), NOW + timedelta(hours=1)
    naive = {"since": since.replace(tzinfo=None).isoformat(), "until": until.replace(tzinfo=None).isoformat()}
    zoned = {"since": since.isoformat(), "until": until.isoformat()}
    only_since = {"since": since.replace(tzinfo=None).isoformat()}
    answers = [(await history.get("/db/executions/stats", params=p)) for p in (naive, zoned, only_since)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["total"] == answers[2].json()["total"] == 6


async def test_bad_queries_are_422(history: httpx.AsyncClient) -> None:
    cases = [
        ("/db/executions", {"status": "exploded"}, "query.status"),
        ("/db/executions", {"started_after": "yesterday"}, "query.started_after"),
        ("/db/executions", {"limit": 0}, "query.limit"),
        ("/db/executions", {"notebook_id": -1}, "query.notebook_id"),
        ("/db/executions/stats", {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since"),
        ("/db/executions/stats", {"since": "2026-01-02T00:00:00", "until": "2026-01-01T00:00:00Z"}, "since"),
        ("/db/executions/stats", {"until": "0001-01-02T00:00:00Z"}, "until"),
        ("/db/executions/stats", {"until": "9999-12-31T23:30:00Z"}, "until"),
        ("/db/executions/abc", {}, "path.id"),
        ("/db/executions/notebook/0", {}, "path.id"),
    ]
    for path, params, field in cases:
        assert isinstance(params, dict)
        response = await history.get(path, params=params)
        assert response.status_code == 422, (path, params, response.text)
        assert response.json()["errors"][0]["field"] == field


async def test_unknown_execution_is_404(history: httpx.AsyncClient) -> None:
    for path in ("/db/executions/42", "/db/executions/42/results"):
        response = await history.get(path)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
