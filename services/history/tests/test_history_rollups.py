"""The rollups: each ended run counted once (duplicates, late and out-of-order events change nothing),
stats read from them within their stated error, each ended run's numeric results counted once, and a
rebuild that lands on what intake kept."""

import asyncio
import json
import math
import random
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from nbp_common.events import MAX_EXECUTION_TIME_SECONDS, MAX_RESULT_MAGNITUDE
from nbp_history.rollups.histogram import RELATIVE_ERROR
from nbp_history.rollups.maintain import DAY, FILL_RUN_ROLLUPS, HOUR, WEEK
from nbp_history.rollups.schemas import ExecutionStats
from nbp_history.rollups.stats import cover, rows
from sqlalchemy.engine import URL

from tests.support.common import asyncpg_dsn

NOW = datetime.now(UTC)
ROLLUP_COLUMNS = (
    "period_start, notebook_id, username, status, notebook_name, runs, timed_runs,"
    " round(execution_time_sum::numeric, 6) AS execution_time_sum, duration_histogram"
)


def event(
    execution_id: int, status: str, queued: datetime, seconds: float | None = None, **fields: object
) -> dict:
    body: dict = {
        "event_id": str(uuid.uuid4()),
        "execution_id": execution_id,
        "status": status,
        "occurred_at": queued.isoformat(),
        "notebook_id": 1 + execution_id % 3,
        "notebook_name": f"notebook {1 + execution_id % 3}",
        "username": "alice" if execution_id % 2 else "bob",
        "input_path": "nb.ipynb",
        "queued_at": queued.isoformat(),
        **fields,
    }
    if status != "queued":
        body["started_at"] = (queued + timedelta(seconds=1)).isoformat()
    if seconds is not None:
        body["execution_time_seconds"] = seconds
    return body


async def send(history: httpx.AsyncClient, body: dict) -> str:
    response = await history.post("/internal/events", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["outcome"])


async def rollups(database_url: URL, table: str) -> list[dict]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(f"SELECT {ROLLUP_COLUMNS} FROM history.{table} ORDER BY 1, 2, 3, 4")
    finally:
        await conn.close()
    return [dict(row) for row in rows]


async def test_a_run_is_counted_once_whatever_its_events_do(
    history: httpx.AsyncClient, database_url: URL
) -> None:
    queued = NOW - timedelta(hours=2)
    done = event(1, "completed", queued, 2.0)
    assert await send(history, event(1, "queued", queued)) == "applied"
    assert await send(history, done) == "applied"
    assert await send(history, done) == "duplicate"
    assert await send(history, event(1, "running", queued)) == "stale"
    assert await send(history, event(1, "failed", queued, 9.0)) == "stale"
    # Out of order: the ending first, its run's earlier states after it.
    assert await send(history, event(2, "failed", queued, 4.0)) == "applied"
    assert await send(history, event(2, "running", queued)) == "stale"
    assert await send(history, event(2, "queued", queued)) == "stale"
    # Concurrent copies of one ending.
    copies = [event(3, "completed", queued, 1.0)] * 5
    outcomes = await asyncio.gather(*(send(history, body) for body in copies))
    assert sorted(outcomes) == ["applied"] + ["duplicate"] * 4

    hourly = await rollups(database_url, "execution_rollups_hourly")
    assert sum(row["runs"] for row in hourly) == 3
    assert {(row["notebook_id"], row["status"], row["runs"]) for row in hourly} == {
        (2, "completed", 1),
        (3, "failed", 1),
        (1, "completed", 1),
    }
    daily = await rollups(database_url, "execution_rollups_daily")
    assert sum(row["runs"] for row in daily) == 3
    stats = (await history.get("/db/executions/stats")).json()
    assert stats["by_status"]["completed"] == 2
    assert stats["by_status"]["failed"] == 1


async def test_stats_match_the_runs_within_the_stated_error(history: httpx.AsyncClient) -> None:
    generator = random.Random(7)
    durations: dict[int, list[float]] = {1: [], 2: [], 3: []}
    statuses = ["completed"] * 8 + ["failed", "timed_out", "cancelled", "running", "queued"]
    by_status = dict.fromkeys(["queued", "running", "completed", "failed", "cancelled", "timed_out"], 0)
    for execution_id in range(1, 241):
        status = generator.choice(statuses)
        seconds = generator.lognormvariate(1, 1.5) if status not in ("queued", "running") else None
        # Spread over 5 days, across day and hour boundaries.
        queued = NOW - timedelta(minutes=generator.uniform(1, 5 * 24 * 60))
        await send(history, event(execution_id, status, queued, seconds))
        by_status[status] += 1
        if status == "completed":
            durations[1 + execution_id % 3].append(seconds or 0.0)

    stats = (await history.get("/db/executions/stats")).json()
    assert stats["by_status"] == by_status
    assert stats["total"] == 240
    for notebook in stats["notebooks"]:
        values = sorted(durations[notebook["notebook_id"]])
        assert notebook["completed"] == len(values)
        for fraction, key in ((0.5, "p50_duration_seconds"), (0.95, "p95_duration_seconds")):
            exact = values[max(1, math.ceil(fraction * len(values))) - 1]
            assert notebook[key] == pytest.approx(exact, rel=RELATIVE_ERROR), (notebook, fraction)


async def test_the_stats_window_is_widened_to_whole_hours(history: httpx.AsyncClient) -> None:
    hour = datetime(2026, 3, 4, 10, tzinfo=UTC)
    await send(history, event(1, "completed", hour + timedelta(minutes=5), 1.0))
    await send(history, event(2, "completed", hour + timedelta(minutes=55), 1.0))
    await send(history, event(3, "completed", hour + timedelta(hours=1, minutes=5), 1.0))
    since, until = hour + timedelta(minutes=30), hour + timedelta(minutes=40)
    stats = (
        await history.get(
            "/db/executions/stats", params={"since": since.isoformat(), "until": until.isoformat()}
        )
    ).json()
    assert (stats["since"], stats["until"]) == ("2026-03-04T10:00:00Z", "2026-03-04T11:00:00Z")
    assert stats["total"] == 2
    # Across days: whole days from the daily rollups, the edges from the hourly ones.
    week = (
        await history.get(
            "/db/executions/stats",
            params={
                "since": (hour - timedelta(days=3, hours=5)).isoformat(),
                "until": (hour + timedelta(days=2)).isoformat(),
            },
        )
    ).json()
    assert week["total"] == 3


def test_a_window_is_summed_from_few_whole_periods() -> None:
    generator = random.Random(3)
    for _ in range(2000):
        since = HOUR.floor(NOW - timedelta(hours=generator.uniform(1, 24 * 90)))
        until = since + timedelta(hours=generator.randint(1, 24 * 60))
        periods = cover(since, until)
        # Added and taken away, every moment of the window is counted once and nothing outside it.
        changes: dict[datetime, int] = {}
        for grain, start, end, sign in periods:
            assert grain.floor(start) == start
            assert grain.floor(end) == end
            assert start < end
            changes[start] = changes.get(start, 0) + sign
            changes[end] = changes.get(end, 0) - sign
        counted, coverage = 0, []
        for moment in sorted(changes):
            counted += changes[moment]
            coverage.append((moment, counted))
        assert [(m, c) for m, c in coverage if changes[m]] == [(since, 1), (until, 0)]
        # Never more rows than the hours and days would be; about a dozen over a month.
        assert rows(periods) <= 4 * (3 + 2 + 4) + 9
        if until - since <= timedelta(days=31):
            assert rows(periods) <= 4 * (3 + 2 + 4) + 5


async def test_stats_over_any_window_count_exactly_the_runs_in_it(
    history: httpx.AsyncClient, database_url: URL
) -> None:
    # Runs over 40 days, ended and not, each counted in its hour, six hours, day and week at intake.
    generator = random.Random(5)
    statuses = ["completed", "completed", "failed", "timed_out", "cancelled", "running", "queued"]
    for execution_id in range(1, 201):
        status = generator.choice(statuses)
        queued = NOW - timedelta(minutes=generator.uniform(1, 40 * 24 * 60))
        seconds = generator.uniform(0.1, 100) if status not in ("running", "queued") else None
        await send(history, event(execution_id, status, queued, seconds))
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        for _ in range(40):
            since = NOW - timedelta(minutes=generator.uniform(0, 42 * 24 * 60))
            until = since + timedelta(minutes=generator.uniform(1, 35 * 24 * 60))
            params = {"since": since.isoformat(), "until": until.isoformat()}
            if generator.random() < 0.3:
                params["username"] = "alice"
            response = await history.get("/db/executions/stats", params=params)
            # Built without validation (model_construct): what it answers is what the model validates.
            assert (
                ExecutionStats.model_validate_json(response.text).model_dump(mode="json") == response.json()
            )
            stats = response.json()
            rows = await conn.fetch(
                "SELECT notebook_id, status, count(*) AS n FROM history.notebook_executions"
                " WHERE queued_at >= $1 AND queued_at < $2 AND ($3::text IS NULL OR username = $3)"
                " GROUP BY 1, 2",
                HOUR.floor(since),
                HOUR.ceil(until),
                params.get("username"),
            )
            by_status = dict.fromkeys(
                ["queued", "running", "completed", "failed", "cancelled", "timed_out"], 0
            )
            per_notebook: dict[int, int] = {}
            for row in rows:
                by_status[row["status"]] += row["n"]
                per_notebook[row["notebook_id"]] = per_notebook.get(row["notebook_id"], 0) + row["n"]
            assert stats["by_status"] == by_status, params
            assert {n["notebook_id"]: n["total"] for n in stats["notebooks"]} == per_notebook, params
    finally:
        await conn.close()


async def test_rollups_out_of_step_still_answer(history: httpx.AsyncClient, database_url: URL) -> None:
    # As after a rolling update that added a rollup (the old pods did not keep it): the stats subtract
    # finer rollups from a coarser one that misses runs, and answer (off by those runs) until a rebuild.
    monday = WEEK.floor(NOW - timedelta(days=21))
    for execution_id in range(1, 21):
        # Ten in the first hour of the week, ten later in it.
        queued = monday + (
            timedelta(minutes=10 + execution_id)
            if execution_id <= 10
            else timedelta(days=2, hours=execution_id)
        )
        await send(history, event(execution_id, "completed", queued, 2.0**execution_id))
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("DELETE FROM history.execution_rollups_weekly")
    finally:
        await conn.close()
    # The week without its first hour: the week's rollup, the first hour's taken away.
    params = {
        "since": (monday + timedelta(hours=1)).isoformat(),
        "until": (monday + timedelta(days=7)).isoformat(),
    }
    assert rows(cover(monday + timedelta(hours=1), monday + timedelta(days=7))) == 2
    assert (await history.get("/db/executions/stats", params=params)).status_code == 200
    assert "rollups rebuilt" in rebuild(database_url)
    stats = (await history.get("/db/executions/stats", params=params)).json()
    assert stats["by_status"]["completed"] == 10


def rebuild(database_url: URL) -> str:
    env = {"NBP_DATABASE_URL": database_url.render_as_string(hide_password=False), "NBP_LOG_JSON": "false"}
    result = subprocess.run(
        [sys.executable, "-c", "from nbp_history.main import cli; cli()", "rebuild-rollups"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_a_rebuild_lands_on_what_intake_kept(history: httpx.AsyncClient, database_url: URL) -> None:
    generator = random.Random(11)
    for execution_id in range(1, 121):
        status = generator.choice(["completed", "completed", "failed", "cancelled", "running"])
        queued = NOW - timedelta(minutes=generator.uniform(1, 3 * 24 * 60))
        seconds = generator.choice([None, 0.0005, 0.002, 1.0, 2**0.5, 3600.0, 2e6])
        # Every tenth run is of no registered notebook (notebook_id NULL, a key part of its own).
        fields = {"notebook_id": None, "notebook_name": None} if execution_id % 10 == 0 else {}
        await send(
            history, event(execution_id, status, queued, seconds if status != "running" else None, **fields)
        )
    tables = [grain.table.removeprefix("history.") for grain, _ in FILL_RUN_ROLLUPS]
    kept = {table: await rollups(database_url, table) for table in tables}
    assert all(kept.values())
    assert "rollups rebuilt" in rebuild(database_url)
    assert {table: await rollups(database_url, table) for table in tables} == kept


async def result_rollups(database_url: URL) -> dict[tuple[int | None, str], tuple[int, float, float, float]]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT notebook_id, name, results, value_sum, value_min, value_max"
            " FROM history.execution_result_rollups_daily"
        )
    finally:
        await conn.close()
    return {
        (r["notebook_id"], r["name"]): (r["results"], r["value_sum"], r["value_min"], r["value_max"])
        for r in rows
    }


def scored(
    execution_id: int, status: str, queued: datetime, values: dict[str, float], **fields: object
) -> dict:
    """An event of a run that recorded ``values`` and one result that is no number."""
    results = [{"name": name, "value_numeric": value} for name, value in values.items()]
    seconds = 1.0 if status != "running" else None
    confusion = {"name": "confusion", "value_json": [[1, 0], [0, 1]]}
    return event(execution_id, status, queued, seconds, results=[*results, confusion], **fields)


async def test_an_ended_runs_numbers_are_rolled_up_once(
    history: httpx.AsyncClient, database_url: URL
) -> None:
    queued = NOW.replace(hour=12, minute=0) - timedelta(
        days=1
    )  # one day for all: a row per notebook and name
    # Run 1 (notebook 2) records while running, then ends with its final numbers.
    assert await send(history, scored(1, "running", queued, {"accuracy": 0.5})) == "applied"
    assert await result_rollups(database_url) == {}, "a running run's numbers are not final"
    done = scored(1, "completed", queued, {"accuracy": 0.9, "loss": 0.25})
    assert await send(history, done) == "applied"
    assert await send(history, done) == "duplicate"
    assert await send(history, scored(1, "failed", queued, {"accuracy": 100.0})) == "stale"
    # Run 4 (notebook 2) fails with a lower accuracy; run 7 (notebook 2) is still running.
    assert await send(history, scored(4, "failed", queued, {"accuracy": 0.7})) == "applied"
    assert await send(history, scored(7, "running", queued, {"accuracy": 0.1})) == "applied"
    # Run 10: of no registered notebook.
    unregistered = scored(10, "completed", queued, {"accuracy": 0.3}, notebook_id=None, notebook_name=None)
    assert await send(history, unregistered) == "applied"
    expected = {
        (2, "accuracy"): (2, pytest.approx(1.6), 0.7, 0.9),
        (2, "loss"): (1, 0.25, 0.25, 0.25),
        (None, "accuracy"): (1, 0.3, 0.3, 0.3),
    }
    assert await result_rollups(database_url) == expected
    assert "3 daily result rows" in rebuild(database_url)
    assert await result_rollups(database_url) == expected


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"execution_time_seconds": 1e306}, "execution_time_seconds", "less_than_equal"),
        ({"execution_time_seconds": float("inf")}, "execution_time_seconds", "finite_number"),
        ({"execution_time_seconds": float("nan")}, "execution_time_seconds", "finite_number"),
        ({"results": [{"name": "x", "value_numeric": 1e308}]}, "results[0].value_numeric", "less_than_equal"),
        (
            {"results": [{"name": "x", "value_numeric": -1e308}]},
            "results[0].value_numeric",
            "greater_than_equal",
        ),
        (
            {"results": [{"name": "x", "value_numeric": float("inf")}]},
            "results[0].value_numeric",
            "finite_number",
        ),
        (
            {"results": [{"name": "x", "value_numeric": float("nan")}]},
            "results[0].value_numeric",
            "finite_number",
        ),
    ],
)
async def test_a_number_the_rollups_cannot_add_is_refused_naming_its_field(
    history: httpx.AsyncClient, database_url: URL, change: dict, field: str, rule: str
) -> None:
    # Two runs of one notebook on one day: their durations share a bucket's arithmetic and their numbers
    # one daily sum (1e308 + 1e308 overflows float8). Each is refused, naming the field and its rule.
    queued = NOW.replace(hour=12, minute=0) - timedelta(days=1)
    for execution_id in (3, 6):
        body = {**event(execution_id, "completed", queued, 1.0), **change}
        response = await history.post(
            "/internal/events",
            content=json.dumps(body),  # allow_nan: the Infinity and NaN Python's JSON reader takes
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422, response.text
        assert {e["field"]: e["rule"] for e in response.json()["errors"]} == {field: rule}
        assert (await history.get(f"/db/executions/{execution_id}")).status_code == 404
    assert await result_rollups(database_url) == {}
    assert await rollups(database_url, HOUR.table.removeprefix("history.")) == []


async def test_the_largest_numbers_allowed_roll_up_and_rebuild(
    history: httpx.AsyncClient, database_url: URL
) -> None:
    # The bounds leave room: many runs of one notebook on one day at the bounds sum without overflow,
    # at intake and on a rebuild, and PostgreSQL's avg/stddev over the raw numbers (what a Superset
    # chart over execution_results asks) stay finite.
    queued = NOW.replace(hour=12, minute=0) - timedelta(days=1)
    values = [MAX_RESULT_MAGNITUDE, MAX_RESULT_MAGNITUDE, -MAX_RESULT_MAGNITUDE, MAX_RESULT_MAGNITUDE]
    for n, value in enumerate(values):
        body = scored(3 * (n + 1), "completed", queued, {"x": value}, username="alice")
        body["execution_time_seconds"] = float(MAX_EXECUTION_TIME_SECONDS)
        assert await send(history, body) == "applied"
    expected = {(1, "x"): (4, 2 * MAX_RESULT_MAGNITUDE, -MAX_RESULT_MAGNITUDE, MAX_RESULT_MAGNITUDE)}
    assert await result_rollups(database_url) == expected
    daily = await rollups(database_url, DAY.table.removeprefix("history."))
    assert [(row["timed_runs"], row["execution_time_sum"]) for row in daily] == [
        (4, 4 * MAX_EXECUTION_TIME_SECONDS)
    ]
    stats = (await history.get("/db/executions/stats")).json()
    assert stats["notebooks"][0]["completed"] == 4
    assert "rollups rebuilt" in rebuild(database_url)
    assert await result_rollups(database_url) == expected
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        average, spread = await conn.fetchrow(
            "SELECT avg(value_numeric), stddev(value_numeric) FROM history.execution_results"
        )
    finally:
        await conn.close()
    assert average == pytest.approx(MAX_RESULT_MAGNITUDE / 2)
    assert math.isfinite(spread)
