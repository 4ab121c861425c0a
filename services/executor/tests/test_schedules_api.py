"""``/schedules`` over the served platform (real PostgreSQL, real kernels, the real clock): every bad
input refused with its field and rule and nothing stored; pause, resume, change, delete, run now; and
two consecutive fires of an every-minute schedule, each run recording its nominal fire time."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.executor import Platform, field_rules

pytestmark = pytest.mark.timeout(300)

Notebook = Callable[..., Path]


async def count(platform: Platform) -> int:
    response = await platform.client.get("/schedules")
    assert response.status_code == 200, response.text
    return int(response.headers["X-Total-Count"])


async def test_bad_input_names_field_and_rule_and_stores_nothing(
    platform: Platform, notebook: Notebook
) -> None:
    notebook(platform.user("sam") / "report.ipynb", "print(n)", parameters="n = 1")
    notebook_id = await platform.register(
        "sam",
        "report.ipynb",
        [{"param_name": "n", "param_type": "int", "default_value": 3, "validation_rules": {"min": 1}}],
    )
    before = await count(platform)
    base = {"notebook_id": notebook_id, "cron": "0 6 * * *"}
    cases: list[tuple[dict[str, Any], int, dict[str, str]]] = [
        ({**base, "cron": "0 6 * *"}, 422, {"cron": "five_fields"}),
        ({**base, "cron": "0 6 * * * *"}, 422, {"cron": "five_fields"}),
        ({**base, "cron": "61 6 * * *"}, 422, {"cron": "syntax"}),
        ({**base, "cron": "0 0 31 2 *"}, 422, {"cron": "syntax"}),
        ({**base, "timezone": "Europe/Atlantis"}, 422, {"timezone": "iana"}),
        ({**base, "cron": "x", "timezone": "Nowhere"}, 422, {"cron": "five_fields", "timezone": "iana"}),
        ({**base, "parameters": {"n": 0}}, 422, {"parameters.n": "min"}),
        ({**base, "parameters": {"n": "three"}}, 422, {"parameters.n": "type"}),
        ({**base, "parameters": {"m": 1}}, 422, {"parameters.m": "unknown"}),
        ({**base, "catch_up": "all"}, 422, {"catch_up": "enum"}),
        ({**base, "max_concurrent": 0}, 422, {"max_concurrent": "greater_than_equal"}),
        ({**base, "username": "kim"}, 403, {}),
    ]
    for body, status, expected in cases:
        response = await platform.client.post("/schedules", json=body)
        assert response.status_code == status, (body, response.text)
        if expected:
            assert field_rules(response.json()) == expected, (body, response.text)
    # A path (not registered) in a folder, and the path rule: ".." never leaves the folder.
    response = await platform.client.post(
        "/schedules", json={"username": "sam", "notebook_path": "../kim/x.ipynb", "cron": "* * * * *"}
    )
    assert response.status_code == 422, response.text
    response = await platform.client.post(
        "/schedules", json={"username": "sam", "notebook_path": "missing.ipynb", "cron": "* * * * *"}
    )
    assert response.status_code == 404, response.text
    assert await count(platform) == before


async def test_lifecycle_pause_resume_change_delete(platform: Platform, notebook: Notebook) -> None:
    notebook(platform.user("lee") / "daily.ipynb", "x = 1")
    created = await platform.client.post(
        "/schedules",
        json={
            "username": "lee",
            "notebook_path": "daily.ipynb",
            "cron": "30  2 * * *",
            "timezone": "Europe/Berlin",
            "description": "nightly",
            "catch_up": "latest",
        },
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert created.headers["Location"] == f"/schedules/{schedule['id']}"
    assert schedule["cron"] == "30 2 * * *"
    assert schedule["overlap"] == "skip"
    assert schedule["max_concurrent"] == 1
    times = [datetime.fromisoformat(t) for t in schedule["next_fire_times"]]
    assert len(times) == 5
    assert all(
        b - a in (timedelta(hours=23), timedelta(hours=24), timedelta(hours=25))
        for a, b in itertools.pairwise(times)
    )
    assert schedule["next_fire_at"] == schedule["next_fire_times"][0]

    url = f"/schedules/{schedule['id']}"
    paused = (await platform.client.patch(url, json={"enabled": False})).json()
    assert paused["enabled"] is False
    assert paused["next_fire_at"] is None
    assert paused["next_fire_times"] == []
    resumed = (await platform.client.patch(url, json={"enabled": True})).json()
    assert resumed["next_fire_times"] == schedule["next_fire_times"]

    changed = await platform.client.patch(url, json={"cron": "0 12 * * 1", "timezone": "UTC"})
    assert changed.status_code == 200, changed.text
    first = datetime.fromisoformat(changed.json()["next_fire_times"][0])
    assert (first.weekday(), first.hour, first.minute) == (0, 12, 0)
    refused = await platform.client.patch(url, json={"cron": "every day", "enabled": None})
    assert refused.status_code == 422
    assert (await platform.client.get(url)).json()["cron"] == "0 12 * * 1"

    listed = await platform.client.get("/schedules")
    assert schedule["id"] in [s["id"] for s in listed.json()]

    assert (await platform.client.delete(url)).status_code == 204
    assert (await platform.client.get(url)).status_code == 404
    assert (await platform.client.delete(url)).status_code == 404


async def test_run_now_and_two_consecutive_fires_on_the_real_clock(
    platform: Platform, notebook: Notebook
) -> None:
    notebook(platform.user("ray") / "tick.ipynb", "import nbp\nnbp.record('n', n)", parameters="n = 0")
    created = await platform.client.post(
        "/schedules",
        json={"username": "ray", "notebook_path": "tick.ipynb", "cron": "* * * * *", "parameters": {"n": 7}},
    )
    assert created.status_code == 201, created.text
    schedule_id = created.json()["id"]

    now = await platform.client.post(f"/schedules/{schedule_id}/run-now")
    assert now.status_code == 202, now.text
    assert now.json()["schedule_id"] == schedule_id
    assert now.json()["fire_time"] is None
    ended = await platform.wait(now.json()["id"])
    assert ended["status"] == "completed", ended
    assert ended["parameters"] == {"n": 7}

    # Two fires of the real clock: wait for the runs of two consecutive minutes.
    fired: list[dict[str, Any]] = []
    for _ in range(150 * 4):  # up to 150 s
        response = await platform.client.get(f"/schedules/{schedule_id}/runs")
        fired = [r for r in response.json() if r["fire_time"] is not None]
        if len(fired) >= 2:
            break
        await asyncio.sleep(0.25)
    assert len(fired) >= 2, fired
    second, first = (datetime.fromisoformat(r["fire_time"]) for r in fired[:2])
    assert second - first == timedelta(minutes=1)
    assert (first.second, first.microsecond) == (0, 0)
    for run in fired[:2]:
        ended = await platform.wait(run["id"])
        assert ended["status"] == "completed", ended
        assert ended["results"] == [{"name": "n", "value_numeric": 7.0, "value_json": None}]
        # The history stores and answers the schedule and the nominal fire time.
        record = await platform.history(run["id"], "completed")
        assert record["schedule_id"] == schedule_id
        assert datetime.fromisoformat(record["fire_time"]) == datetime.fromisoformat(run["fire_time"])

    fires = (await platform.client.get(f"/schedules/{schedule_id}/fires")).json()
    by_time = {f["fire_time"]: f for f in fires}
    for run in fired[:2]:
        fire = by_time[run["fire_time"]]
        assert fire["outcome"] == "queued"
        assert fire["job_id"] == run["id"]
        assert fire["latency_seconds"] >= 0
    assert (
        await platform.client.patch(f"/schedules/{schedule_id}", json={"enabled": False})
    ).status_code == 200
