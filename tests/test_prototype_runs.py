"""The prototype's clients against the whole platform: what they registered runs, each user's own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.executor import Platform

pytestmark = pytest.mark.timeout(180)


async def test_two_users_register_the_same_relative_path_and_each_runs_their_own(
    platform: Platform, notebook: Callable[..., Path]
) -> None:
    ids = {}
    for user in ("amy", "ben"):
        notebook(
            platform.user(user) / "shared" / "report.ipynb", f"import nbp\nnbp.record('owner', {user!r})"
        )
        response = await platform.client.post(
            "/db/notebooks",
            json={"name": "report", "file_path": f"/home/{user}/shared/report.ipynb", "username": user},
        )
        assert response.status_code == 201, response.text
        assert response.json()["file_path"] == "shared/report.ipynb"
        ids[user] = response.json()["id"]
    for user, notebook_id in ids.items():
        run = await platform.client.post("/execute", json={"notebook_id": notebook_id})
        assert run.status_code == 200, run.text
        assert run.json()["status"] == "completed", run.text
        assert run.json()["username"] == user
        assert run.json()["results"] == [{"name": "owner", "value_numeric": None, "value_json": user}]
