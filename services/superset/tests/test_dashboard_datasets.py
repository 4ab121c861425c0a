"""The dashboards' datasets (superset-auth/dashboards.py) against the history's own tables, without
Superset: their SQL over runs the history recorded and rolled up from the executor's events, checked
against what the history makes of the same runs (its percentile reading of the histograms)."""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import httpx
import pytest
from nbp_history.rollups import histogram
from sqlalchemy.engine import URL

from tests.support.common import asyncpg_dsn


def load_dashboards() -> ModuleType:
    path = Path(__file__).resolve().parents[3] / "superset-auth" / "dashboards.py"
    spec = importlib.util.spec_from_file_location("nbp_dashboards_definition", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


dashboards = load_dashboards()
NOW = datetime.now(UTC)
# (notebook_id, notebook_name, username, input_path, status, queued hours ago, seconds, owner_groups)
RUNS: list[tuple[Any, ...]] = [
    *[
        (1, "train", "alice", "train.ipynb", "completed", 2 + i, s, ["data-scientists"])
        for i, s in enumerate([1.0, 2.0, 3.0, 10.0, 0.0004])
    ],
    (1, "train", "alice", "train.ipynb", "completed", 24 * 40, 1000.0, ["data-scientists"]),
    (1, "train", "alice", "train.ipynb", "queued", 0.1, None, ["data-scientists"]),
    (None, None, "bob", "scratch.ipynb", "failed", 3, 5.0, []),
    (None, None, "carol", "report.ipynb", "completed", 4, 7.0, ["analysts", "data-scientists"]),
]


@pytest.fixture
async def recorded(history: httpx.AsyncClient, database_url: URL) -> AsyncIterator[asyncpg.Connection]:
    """The runs, each as the executor reports its latest state to the history (which rolls them up)."""
    for number, (notebook_id, name, user, path, status, hours, seconds, groups) in enumerate(RUNS, 1):
        queued = NOW - timedelta(hours=hours)
        ended = status not in ("queued", "running")
        event = {
            "event_id": str(uuid.uuid4()),
            "execution_id": number,
            "occurred_at": NOW.isoformat(),
            "status": status,
            "notebook_id": notebook_id,
            "notebook_name": name,
            "username": user,
            "input_path": path,
            "owner_groups": groups,
            "queued_at": queued.isoformat(),
            "started_at": queued.isoformat() if ended else None,
            "completed_at": (queued + timedelta(seconds=seconds)).isoformat() if ended else None,
            "execution_time_seconds": seconds,
            "results": [
                {"name": "accuracy", "value_numeric": number / 10},
                {"name": "model", "value_json": {"layers": number}},
            ],
        }
        response = await history.post("/internal/events", json=event)
        assert response.status_code == 200, response.text
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        yield conn
    finally:
        await conn.close()


async def totals(conn: asyncpg.Connection, dataset: Any, key: str, value: str = "runs") -> dict[str, Any]:
    rows = await conn.fetch(f"SELECT {key} AS k, sum({value}) AS v FROM ({dataset.sql}) AS d GROUP BY 1")
    return {row["k"]: row["v"] for row in rows}


async def test_histogram_constants_are_the_historys() -> None:
    assert dashboards.SMALLEST_SECONDS == histogram.SMALLEST_SECONDS
    assert dashboards.BUCKETS_PER_DOUBLING == histogram.PER_DOUBLING


async def test_run_counts_are_the_rollups_and_the_live_runs(recorded: asyncpg.Connection) -> None:
    by_status = await totals(recorded, dashboards.RUN_COUNTS, "status")
    assert by_status == {"completed": 7, "failed": 1, "queued": 1}
    by_notebook = await totals(recorded, dashboards.RUN_COUNTS, dashboards.notebook_label())
    assert by_notebook == {"train": 7, dashboards.NOT_REGISTERED: 2}


async def test_durations_are_the_historys_percentiles_of_the_last_30_days(
    recorded: asyncpg.Connection,
) -> None:
    rows = await recorded.fetch(dashboards.NOTEBOOK_DURATIONS.sql)
    found = {row["notebook"]: row for row in rows}
    assert {name: row["timed_runs"] for name, row in found.items()} == {
        "train": 5,  # the run 40 days ago is outside the window, the queued one has no duration
        dashboards.NOT_REGISTERED: 2,
    }
    for notebook_id, name in ((1, "train"), (None, dashboards.NOT_REGISTERED)):
        counts: dict[int, int] = {}
        for (hist,) in await recorded.fetch(
            "SELECT duration_histogram FROM history.execution_rollups_daily"
            " WHERE notebook_id IS NOT DISTINCT FROM $1 AND period_start >= now() - interval '30 days'",
            notebook_id,
        ):
            for bucket, runs in json.loads(hist).items():
                counts[int(bucket)] = counts.get(int(bucket), 0) + runs
        assert found[name]["p50_seconds"] == pytest.approx(histogram.percentile(counts, 0.5), rel=1e-12)
        assert found[name]["p95_seconds"] == pytest.approx(histogram.percentile(counts, 0.95), rel=1e-12)
    train = found["train"]
    assert train["p50_seconds"] == pytest.approx(2.0, rel=histogram.RELATIVE_ERROR)
    assert train["p95_seconds"] == pytest.approx(10.0, rel=histogram.RELATIVE_ERROR)


async def test_runs_count_under_each_group_of_their_owner(recorded: asyncpg.Connection) -> None:
    assert await totals(recorded, dashboards.RUN_GROUPS, "group_name") == {
        "data-scientists": 7,  # alice's six ended runs and carol's
        "analysts": 1,
        dashboards.NO_GROUP: 1,
    }


async def test_result_trends_are_the_ended_runs_numbers(recorded: asyncpg.Connection) -> None:
    trends = await recorded.fetch(
        "SELECT notebook, result, sum(value_sum) / sum(results) AS mean, sum(results) AS results,"
        f" min(value_min) AS least, max(value_max) AS greatest FROM ({dashboards.RESULT_TRENDS.sql}) AS d"
        " GROUP BY 1, 2"
    )
    raw = await recorded.fetch(
        f"SELECT {dashboards.notebook_label('e.notebook_name')} AS notebook, r.name AS result,"
        " avg(r.value_numeric) AS mean, count(*) AS results, min(r.value_numeric) AS least,"
        " max(r.value_numeric) AS greatest"
        " FROM history.execution_results AS r JOIN history.notebook_executions AS e ON e.id = r.execution_id"
        f" WHERE e.status IN {dashboards.ENDED} AND r.value_numeric IS NOT NULL GROUP BY 1, 2"
    )
    found = {(row["notebook"], row["result"]): row for row in trends}
    assert {key: row["results"] for key, row in found.items()} == {
        ("train", "accuracy"): 6,  # not the queued run's: a run's numbers count once it has ended
        (dashboards.NOT_REGISTERED, "accuracy"): 2,
    }
    for row in raw:
        trend = found[(row["notebook"], row["result"])]
        assert trend["results"] == row["results"]
        assert trend["mean"] == pytest.approx(row["mean"], rel=1e-12)
        assert (trend["least"], trend["greatest"]) == (row["least"], row["greatest"])


async def test_failure_rates_count_a_notebook_without_failures_as_zero(recorded: asyncpg.Connection) -> None:
    rate = next(m for m in dashboards.RUN_COUNTS.metrics if m.name == "failure_rate")
    rows = await recorded.fetch(
        f"SELECT {dashboards.notebook_label()} AS notebook, {rate.expression} AS rate"
        f" FROM ({dashboards.RUN_COUNTS.sql}) AS d GROUP BY 1"
    )
    assert {row["notebook"]: row["rate"] for row in rows} == {"train": 0.0, dashboards.NOT_REGISTERED: 0.5}
