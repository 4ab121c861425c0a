"""Two executor processes firing the same schedules on the real clock for a few minutes, each killed
with SIGKILL (at a minute's turn, when the fires are being claimed) and started again in between:
every fire time has exactly one claim and exactly one run, and none is missing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import URL

from tests.support.common import RestartableService, asyncpg_dsn

Notebook = Callable[..., Path]
SCHEDULES = 5


async def until_second(second: float) -> None:
    """Sleep until the wall clock's seconds-in-minute reach ``second`` (next occurrence)."""
    now = time.time()
    wait = (second - now % 60) % 60
    await asyncio.sleep(wait)


@pytest.mark.timeout(480)
async def test_two_replicas_killed_and_restarted_fire_each_time_exactly_once(
    database_url: URL, tmp_path: Path, notebook: Notebook
) -> None:
    workspace = tmp_path / "workspace"
    notebook(workspace / "zoe" / "tick.ipynb", "x = 1")
    base = {
        "NBP_DATABASE_URL": database_url.render_as_string(hide_password=False),
        "NBP_LOG_JSON": "false",
        "NBP_LOG_LEVEL": "WARNING",
    }
    registry = RestartableService("registry", base, log_dir=tmp_path)
    history = RestartableService("history", base, log_dir=tmp_path)
    executor_env = {
        **base,
        "NBP_WORKSPACE": str(workspace),
        "NBP_REGISTRY_URL": registry.url,
        "NBP_HISTORY_URL": history.url,
        "NBP_EXECUTOR_WORKERS": "1",
        "NBP_EXECUTOR_LEASE_SECONDS": "5",
    }
    a = RestartableService("executor", executor_env, log_dir=tmp_path)
    b = RestartableService("executor", executor_env, log_dir=tmp_path)
    try:
        await asyncio.gather(registry.start(), history.start())
        await asyncio.gather(a.start(), b.start())
        async with httpx.AsyncClient(base_url=a.url, timeout=30) as client:
            for n in range(SCHEDULES):
                response = await client.post(
                    "/schedules",
                    json={
                        "username": "zoe",
                        "notebook_path": "tick.ipynb",
                        "cron": "* * * * *",
                        "max_concurrent": 10,
                        "description": f"replica test {n}",
                    },
                )
                assert response.status_code == 201, response.text
        started = datetime.now(UTC)
        # Kill A just after a minute turns (while the fires are being claimed), start it again;
        # then the same for B; then both keep running through one more fire.
        for victim in (a, b, a):
            await until_second(0.05)
            await victim.kill()
            await asyncio.sleep(15)
            await victim.start()
        await until_second(10)
        ended = datetime.now(UTC)
    finally:
        for process in (a, b, history, registry):
            await process.stop(grace=10)

    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        fires: list[Any] = await conn.fetch(
            "SELECT schedule_id, fire_time, outcome, job_id FROM executor.schedule_fires "
            "ORDER BY schedule_id, fire_time"
        )
        runs: list[Any] = await conn.fetch(
            "SELECT schedule_id, fire_time, count(*) AS n, min(id) AS id FROM executor.jobs "
            "WHERE schedule_id IS NOT NULL GROUP BY schedule_id, fire_time"
        )
    finally:
        await conn.close()

    first = started.replace(second=0, microsecond=0) + timedelta(minutes=1)
    minutes = int((ended - first).total_seconds() // 60) + 1
    expected = [first + timedelta(minutes=m) for m in range(minutes)]
    assert minutes >= 3, (started, ended)
    by_schedule: dict[int, list[datetime]] = {}
    for fire in fires:
        by_schedule.setdefault(fire["schedule_id"], []).append(fire["fire_time"])
        assert fire["outcome"] == "queued", fire
    assert len(by_schedule) == SCHEDULES
    for schedule_id, times in by_schedule.items():
        assert [t for t in times if first <= t <= ended] == expected, (schedule_id, times)
    assert all(run["n"] == 1 for run in runs), [dict(r) for r in runs if r["n"] != 1]
    claimed = {(f["schedule_id"], f["fire_time"]): f["job_id"] for f in fires}
    assert {(r["schedule_id"], r["fire_time"]): r["id"] for r in runs} == claimed
