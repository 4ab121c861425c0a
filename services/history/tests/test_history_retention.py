"""Retention: ended runs past their policy (the platform's, or their notebook's own) are removed in
batches with their results and output notebooks, never anything outside the owner's folder, and the
stats and the result rollups keep counting them, through a rebuild too."""

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import URL

from tests.support.common import asyncpg_dsn

NOW = datetime.now(UTC)


async def record(
    history: httpx.AsyncClient,
    execution_id: int,
    notebook_id: int,
    days_ago: float,
    status: str = "completed",
) -> None:
    queued = NOW - timedelta(days=days_ago)
    body = {
        "event_id": str(uuid.uuid4()),
        "execution_id": execution_id,
        "status": status,
        "occurred_at": queued.isoformat(),
        "notebook_id": notebook_id,
        "username": "alice",
        "input_path": "nb.ipynb",
        "output_path": f"outputs/run-{execution_id}.ipynb",
        "queued_at": queued.isoformat(),
        "started_at": (queued + timedelta(seconds=1)).isoformat(),
        "execution_time_seconds": 2.0 if status != "running" else None,
        "results": [{"name": "score", "value_numeric": execution_id}],
    }
    response = await history.post("/internal/events", json=body)
    assert response.json()["outcome"] == "applied", response.text


def command(database_url: URL, workspace: Path, name: str) -> str:
    env = {
        "NBP_DATABASE_URL": database_url.render_as_string(hide_password=False),
        "NBP_LOG_JSON": "false",
        "NBP_HISTORY_RETENTION_DAYS": "10",
        "NBP_HISTORY_RETENTION_BATCH": "2",
        "NBP_WORKSPACE": str(workspace),
    }
    result = subprocess.run(
        [sys.executable, "-c", "from nbp_history.main import cli; cli()", name],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def result_rollups(database_url: URL) -> list[dict]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT period_start, notebook_id, name, results, value_sum, value_min, value_max"
            " FROM history.execution_result_rollups_daily ORDER BY 1, 2, 3"
        )
    finally:
        await conn.close()
    return [dict(row) for row in rows]


async def test_old_runs_go_their_totals_stay(
    history: httpx.AsyncClient, database_url: URL, tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace"
    outputs = workspace / "alice" / "outputs"
    outputs.mkdir(parents=True)
    victim = workspace / "bob" / "private.ipynb"
    victim.parent.mkdir()
    victim.write_text("bob's")
    # notebook 1: its own 2 days; notebook 2: the platform's 10; notebook 3: its own 100.
    runs = {1: (1, 1), 2: (1, 5), 3: (2, 5), 4: (2, 20), 5: (2, 30), 6: (3, 30), 7: (3, 200), 8: (2, 40)}
    for execution_id, (notebook_id, days_ago) in runs.items():
        status = "running" if execution_id == 8 else "completed"
        await record(history, execution_id, notebook_id, days_ago, status)
        (outputs / f"run-{execution_id}.ipynb").write_text("{}")
    # A user's link to another user's file, where a removed run's output was: the link goes, not the file.
    (outputs / "run-5.ipynb").unlink()
    (outputs / "run-5.ipynb").symlink_to(victim)

    assert (
        await history.put("/db/executions/retention/notebooks/1", json={"retention_days": 2})
    ).status_code == 200
    assert (
        await history.put("/db/executions/retention/notebooks/3", json={"retention_days": 100})
    ).json() == {
        "notebook_id": 3,
        "retention_days": 100,
    }
    bad = await history.put("/db/executions/retention/notebooks/3", json={"retention_days": 0})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "retention_days"
    window = {"since": (NOW - timedelta(days=365)).isoformat()}
    before = (await history.get("/db/executions/stats", params=window)).json()
    results_before = await result_rollups(database_url)
    # Every ended run's score; not yet the running 8's.
    assert sum(row["results"] for row in results_before) == 7
    assert sum(row["value_sum"] for row in results_before) == sum(range(1, 8))

    report = command(database_url, workspace, "purge-expired")
    assert "purged 4 runs" in report, report
    # Gone: 2 (notebook 1, 5 days), 4 and 5 (platform's 10 days), 7 (200 > 100 days). Kept: the running 8.
    kept = [r["id"] for r in (await history.get("/db/executions")).json()]
    assert sorted(kept) == [1, 3, 6, 8]
    assert not (outputs / "run-2.ipynb").exists()
    assert not (outputs / "run-5.ipynb").is_symlink()
    assert victim.read_text() == "bob's"
    assert (outputs / "run-1.ipynb").exists()
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        assert await conn.fetchval("SELECT count(*) FROM history.execution_results") == 4
        assert await conn.fetchval("SELECT count(DISTINCT execution_id) FROM history.processed_events") == 4
    finally:
        await conn.close()

    after = (await history.get("/db/executions/stats", params=window)).json()
    assert after == before
    assert await result_rollups(database_url) == results_before
    assert "rollups rebuilt" in command(database_url, workspace, "rebuild-rollups")
    assert (await history.get("/db/executions/stats", params=window)).json() == before
    assert await result_rollups(database_url) == results_before

    policies = (await history.get("/db/executions/retention")).json()
    assert policies == {
        "default_days": None,
        "notebooks": [{"notebook_id": 1, "retention_days": 2}, {"notebook_id": 3, "retention_days": 100}],
    }
    assert (await history.delete("/db/executions/retention/notebooks/1")).status_code == 204
    assert (await history.delete("/db/executions/retention/notebooks/1")).status_code == 404
