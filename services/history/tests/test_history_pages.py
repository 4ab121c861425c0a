"""Lists at any depth: keyset pages (cursor, X-Next-Cursor, Link), the total exact or marked estimated,
and the order every list keeps: newest queued first, then the highest id."""

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from nbp_history.runs import queries

NOW = datetime.now(UTC)


async def record(
    history: httpx.AsyncClient,
    execution_id: int,
    minutes_ago: float,
    username: str = "alice",
    **fields: object,
) -> None:
    queued = NOW - timedelta(minutes=minutes_ago)
    body = {
        "event_id": str(uuid.uuid4()),
        "execution_id": execution_id,
        "status": "completed",
        "occurred_at": queued.isoformat(),
        "username": username,
        "input_path": "nb.ipynb",
        "queued_at": queued.isoformat(),
        "started_at": (queued + timedelta(seconds=1)).isoformat(),
        **fields,
    }
    response = await history.post("/internal/events", json=body)
    assert response.json()["outcome"] == "applied", response.text


@pytest.fixture
async def runs(history: httpx.AsyncClient) -> None:
    # Ids and queue times disagree on purpose (a backfill); 3 and 4 were queued at the same moment.
    for execution_id, minutes_ago, username in [
        (1, 5, "alice"),
        (2, 50, "bob"),
        (3, 20, "alice"),
        (4, 20, "alice"),
        (5, 40, "bob"),
        (6, 30, "alice"),
        (7, 10, "alice"),
    ]:
        await record(history, execution_id, minutes_ago, username)


async def walk(history: httpx.AsyncClient, path: str, **params: str | int) -> tuple[list[int], list[str]]:
    """Every page of a list, following Link; the ids in order and the links followed."""
    response = await history.get(path, params=params)
    ids: list[int] = []
    links: list[str] = []
    while True:
        assert response.status_code == 200, response.text
        ids += [r["id"] for r in response.json()]
        if "Link" not in response.headers:
            assert "X-Next-Cursor" not in response.headers
            return ids, links
        link = response.headers["Link"]
        assert link.startswith("</db/")
        assert link.endswith('>; rel="next"')
        url = link[1 : link.index(">")]
        assert parse_qs(urlsplit(url).query)["cursor"] == [response.headers["X-Next-Cursor"]]
        links.append(url)
        response = await history.get(url)


async def test_cursor_pages_walk_the_whole_list_in_order(history: httpx.AsyncClient, runs: None) -> None:
    everything = [r["id"] for r in (await history.get("/db/executions")).json()]
    assert everything == [1, 7, 4, 3, 6, 5, 2]
    ids, links = await walk(history, "/db/executions", limit=2)
    assert ids == everything
    assert len(links) == 3
    # A cursor and a filter: the filter is kept in every next link.
    alice, links = await walk(history, "/db/executions", limit=2, username="alice")
    assert alice == [1, 7, 4, 3, 6]
    assert all("username=alice" in link for link in links)
    notebook_less, _ = await walk(history, "/db/executions", limit=3, started_before=NOW.isoformat())
    assert notebook_less == everything


async def test_an_offset_counts_from_the_cursor_and_the_next_link_drops_it(
    history: httpx.AsyncClient, runs: None
) -> None:
    first = await history.get("/db/executions", params={"limit": 2})
    cursor = first.headers["X-Next-Cursor"]
    skipped = await history.get("/db/executions", params={"limit": 2, "offset": 1, "cursor": cursor})
    assert [r["id"] for r in skipped.json()] == [3, 6]
    assert "offset" not in skipped.headers["Link"]


async def test_totals_are_exact_up_to_the_limit_then_estimated_and_marked(
    history: httpx.AsyncClient, runs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    exact = await history.get("/db/executions", params={"limit": 1, "username": "bob"})
    assert (exact.headers["X-Total-Count"], exact.headers["X-Total-Count-Estimated"]) == ("2", "false")
    monkeypatch.setattr(queries, "EXACT_TOTAL_LIMIT", 3)
    estimated = await history.get("/db/executions", params={"limit": 1})
    assert estimated.headers["X-Total-Count-Estimated"] == "true"
    assert int(estimated.headers["X-Total-Count"]) >= 4
    small = await history.get("/db/executions", params={"username": "bob"})
    assert (small.headers["X-Total-Count"], small.headers["X-Total-Count-Estimated"]) == ("2", "false")


@pytest.mark.parametrize(
    "cursor",
    ["garbage!", "bm90IGEgY3Vyc29y", "MjAyNi0wMS0wMXwx", "MjAyNi0wMS0wMVQwMDowMDowMCswMDowMHww"],
)
async def test_a_cursor_the_api_did_not_give_is_422(history: httpx.AsyncClient, cursor: str) -> None:
    response = await history.get("/db/executions", params={"cursor": cursor})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.cursor"


async def test_a_start_stamped_before_the_queueing_moves_the_queueing(history: httpx.AsyncClient) -> None:
    # A worker's clock a second behind the database's: the record keeps started_at >= queued_at, which
    # the lists of old runs rely on (a CHECK on the table).
    queued = NOW - timedelta(minutes=1)
    await record(
        history,
        11,
        1,
        queued_at=queued.isoformat(),
        started_at=(queued - timedelta(seconds=1)).isoformat(),
    )
    run = (await history.get("/db/executions/11")).json()
    assert run["queued_at"] == run["started_at"]
    assert [
        r["id"]
        for r in (await history.get("/db/executions", params={"started_before": queued.isoformat()})).json()
    ] == [11]


async def test_an_event_without_a_queue_time_is_listed_by_its_start(history: httpx.AsyncClient) -> None:
    started = NOW - timedelta(minutes=3)
    await record(history, 12, 3, queued_at=None, started_at=started.isoformat())
    await record(history, 13, 2)
    assert [r["id"] for r in (await history.get("/db/executions")).json()] == [13, 12]
