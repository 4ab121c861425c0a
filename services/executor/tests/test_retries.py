"""Retries on a single run request and on a schedule: max_retries, backoff, which endings; each attempt
a run of its own linked to the first (``retry_of``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.executor import Platform

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        # The workers' safety-net poll far longer than any backoff here: a retry that starts on time
        # was woken for its not_before, not found by a poll.
        patch.setenv("NBP_EXECUTOR_POLL_SECONDS", "600")
        yield patch


Notebook = Callable[..., Path]
FAIL_ONCE = (
    "import os\n"
    "if not os.path.exists('tried-once'):\n"
    "    open('tried-once', 'w').close()\n"
    "    raise RuntimeError('first attempt fails')"
)


async def attempts(platform: Platform, first_id: int, count: int, within: float = 90) -> list[dict[str, Any]]:
    """The first run and its retries, once ``count`` of them have ended, in attempt order."""
    deadline = asyncio.get_running_loop().time() + within
    runs: list[dict[str, Any]] = []
    next_id = first_id
    while True:
        runs = [await platform.wait(first_id)]
        for candidate in range(first_id + 1, first_id + 50):
            response = await platform.client.get(f"/executions/{candidate}")
            if response.status_code == 200 and response.json()["retry_of"] == first_id:
                runs.append(await platform.wait(candidate))
                next_id = candidate
        if len(runs) >= count:
            return runs
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"only {len(runs)} attempts of {first_id} (last {next_id}): {runs}")
        await asyncio.sleep(0.5)


async def test_a_failed_run_is_retried_with_backoff_each_attempt_its_own_run(
    platform: Platform, notebook: Notebook
) -> None:
    notebook(platform.user("rex") / "always.ipynb", "raise ValueError('no')")
    response = await platform.client.post(
        "/executions",
        json={
            "username": "rex",
            "notebook_path": "always.ipynb",
            "retry": {"max_retries": 2, "backoff_seconds": 1, "retry_on": ["failed"]},
        },
    )
    assert response.status_code == 202, response.text
    first = response.json()
    assert first["retry"] == {"max_retries": 2, "backoff_seconds": 1.0, "retry_on": ["failed"]}
    runs = await attempts(platform, first["id"], 3)
    assert [r["attempt"] for r in runs] == [1, 2, 3]
    assert [r["status"] for r in runs] == ["failed"] * 3
    assert [r["retry_of"] for r in runs] == [None, first["id"], first["id"]]
    records = [await platform.history(r["id"], "failed") for r in runs]
    assert [r["retry_of"] for r in records] == [None, first["id"], first["id"]]
    assert [r["attempt"] for r in records] == [1, 2, 3]
    assert len({r["output_path"] for r in runs}) == 3
    # Backoff: the second attempt waits 1 s after the first ended, the third 2 s after the second.
    for previous, retry, wait in ((runs[0], runs[1], 1), (runs[1], runs[2], 2)):
        ended = datetime.fromisoformat(previous["completed_at"])
        assert (datetime.fromisoformat(retry["not_before"]) - ended).total_seconds() >= wait - 0.1
        late = datetime.fromisoformat(retry["started_at"]) - datetime.fromisoformat(retry["not_before"])
        assert 0 <= late.total_seconds() < 10, late  # on time: the poll is 600 s
    # No fourth: max_retries is 2.
    later = await platform.client.get(f"/executions/{runs[2]['id'] + 1}")
    assert later.status_code == 404 or later.json()["retry_of"] != first["id"]


async def test_a_retry_that_succeeds_ends_the_chain_and_other_endings_are_not_retried(
    platform: Platform, notebook: Notebook
) -> None:
    folder = platform.user("sue")
    notebook(folder / "flaky.ipynb", FAIL_ONCE)
    response = await platform.client.post(
        "/executions",
        json={
            "username": "sue",
            "notebook_path": "flaky.ipynb",
            "retry": {"max_retries": 3, "backoff_seconds": 0},
        },
    )
    runs = await attempts(platform, response.json()["id"], 2)
    assert [r["status"] for r in runs] == ["failed", "completed"]
    assert len(runs) == 2

    notebook(folder / "broken.ipynb", "raise ValueError('no')")
    only_timeouts = await platform.client.post(
        "/executions",
        json={
            "username": "sue",
            "notebook_path": "broken.ipynb",
            "retry": {"max_retries": 3, "backoff_seconds": 0, "retry_on": ["timed_out"]},
        },
    )
    [run] = await attempts(platform, only_timeouts.json()["id"], 1)
    assert run["status"] == "failed"
    follower = await platform.client.get(f"/executions/{run['id'] + 1}")
    assert follower.status_code == 404 or follower.json()["retry_of"] != run["id"]


async def test_a_schedule_retries_its_runs(platform: Platform, notebook: Notebook) -> None:
    notebook(platform.user("tia") / "flaky.ipynb", FAIL_ONCE)
    created = await platform.client.post(
        "/schedules",
        json={
            "username": "tia",
            "notebook_path": "flaky.ipynb",
            "cron": "0 0 1 1 *",
            "retry": {"max_retries": 1, "backoff_seconds": 0.5},
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["retry"]["max_retries"] == 1
    schedule_id = created.json()["id"]
    run = await platform.client.post(f"/schedules/{schedule_id}/run-now")
    runs = await attempts(platform, run.json()["id"], 2)
    assert [r["status"] for r in runs] == ["failed", "completed"]
    assert all(r["schedule_id"] == schedule_id for r in runs)
    listed = (await platform.client.get(f"/schedules/{schedule_id}/runs")).json()
    assert {r["id"] for r in listed} == {r["id"] for r in runs}


async def test_bad_retry_policies_are_refused(platform: Platform, notebook: Notebook) -> None:
    notebook(platform.user("uli") / "n.ipynb", "x = 1")
    for retry, field, rule in [
        ({"max_retries": 11}, "retry.max_retries", "less_than_equal"),
        ({"backoff_seconds": -1}, "retry.backoff_seconds", "greater_than_equal"),
        ({"retry_on": ["cancelled"]}, "retry.retry_on[0]", "enum"),
        ({"retry_on": []}, "retry.retry_on", "too_short"),
    ]:
        response = await platform.client.post(
            "/executions", json={"username": "uli", "notebook_path": "n.ipynb", "retry": retry}
        )
        assert response.status_code == 422, response.text
        assert [(e["field"], e["rule"]) for e in response.json()["errors"]] == [(field, rule)], response.text
