"""The executor behind real Keycloak tokens, end to end: runs in one's own name only, another user's
runs answered as absent, viewers cannot run, admins see all; the executor reads the registry and
reports to the history with its own service account's token (history refuses anyone else's events)."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from nbp_common.events import TERMINAL
from sqlalchemy.engine import URL

from tests.support.executor import write_notebook
from tests.support.keycloak import LocalKeycloak, bearer, keycloak, secured_platform

__all__ = ["keycloak"]  # the session fixture, imported for pytest


@pytest.fixture
async def secured(
    keycloak: LocalKeycloak,
    database_url: URL,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[str, str]]:
    """The whole platform with NBP_AUTH=keycloak on a real port; yields (base URL, workspace)."""
    workspace = tmp_path_factory.mktemp("secured-workspace")
    async with secured_platform(keycloak, database_url, workspace, monkeypatch) as url:
        yield url, str(workspace)


async def ended_record(client: httpx.AsyncClient, run_id: int, headers: dict[str, str]) -> dict[str, Any]:
    """The history's record of a run once it has ended (the outbox relays it within seconds)."""
    for _ in range(300):
        record: dict[str, Any] = (await client.get(f"/db/executions/{run_id}", headers=headers)).json()
        if record.get("status") in TERMINAL:
            return record
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} has not ended in the history: {record}")


async def test_runs_belong_to_their_owner(secured: tuple[str, str], keycloak: LocalKeycloak) -> None:
    url, workspace = secured
    alice, bob, carol, dana = [
        bearer(await keycloak.access_token(name)) for name in ("alice", "bob", "carol", "dana")
    ]
    write_notebook(
        Path(workspace) / "alice" / "square.ipynb",
        "import nbp\nnbp.record('square', n * n)",
        parameters="n = 2",
    )
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        # The registry is read by the executor with its service token: a registered notebook runs.
        created = await client.post(
            "/db/notebooks",
            json={"name": "square", "file_path": "square.ipynb", "username": "alice"},
            headers=alice,
        )
        notebook_id = created.json()["id"]
        await client.post(
            f"/db/parameters/bulk/{notebook_id}",
            json=[{"param_name": "n", "param_type": "int", "default_value": 2}],
            headers=alice,
        )

        assert (await client.post("/execute", json={"notebook_id": notebook_id})).status_code == 401
        spoof = await client.post(
            "/execute", json={"username": "alice", "notebook_path": "square.ipynb"}, headers=bob
        )
        assert spoof.status_code == 403
        by_id = await client.post("/execute", json={"notebook_id": notebook_id}, headers=bob)
        assert by_id.status_code == 404
        viewer = await client.post("/execute", json={"notebook_id": notebook_id}, headers=carol)
        assert viewer.status_code == 403

        run = await client.post(
            "/execute", json={"notebook_id": notebook_id, "parameters": {"n": 7}}, headers=alice
        )
        assert run.status_code == 200, run.text
        assert run.json()["status"] == "completed"
        run_id = run.json()["id"]

        # History gets the record through the executor's service account (relayed from its outbox),
        # with the owner's realm groups as her token named them when she submitted it.
        record = await ended_record(client, run_id, alice)
        assert record["status"] == "completed"
        assert [(r["name"], r["value_numeric"]) for r in record["results"]] == [("square", 49.0)]
        assert record["owner_groups"] == ["data-scientists"]
        forged = await client.post(
            "/internal/events",
            json={
                "event_id": "00000000-0000-4000-8000-000000000000",
                "execution_id": run_id,
                "status": "failed",
                "occurred_at": record["queued_at"],
                "attempt": 9,
                "username": "alice",
                "input_path": "square.ipynb",
            },
            headers=alice,
        )
        assert forged.status_code == 403

        for path in (f"/executions/{run_id}", f"/executions/{run_id}/output", f"/db/executions/{run_id}"):
            assert (await client.get(path, headers=bob)).status_code == 404, path
            assert (await client.get(path, headers=dana)).status_code == 200, path
        assert (await client.post(f"/executions/{run_id}/cancel", headers=bob)).status_code == 404
        assert (await client.get("/list-notebooks/alice", headers=bob)).status_code == 403
        listed = (await client.get("/list-notebooks/alice", headers=alice)).json()["notebooks"]
        names = [f["relative_path"] for f in listed]
        assert names == ["square.ipynb"]
        assert [r["id"] for r in (await client.get("/db/executions", headers=dana)).json()] == [run_id]
        assert (await client.get("/db/executions", headers=bob)).json() == []

        # An admin's run in alice's name does not carry the admin's groups as if they were alice's.
        for_alice = await client.post("/execute", json={"notebook_id": notebook_id}, headers=dana)
        assert for_alice.status_code == 200, for_alice.text
        record = await ended_record(client, for_alice.json()["id"], dana)
        assert (record["username"], record["owner_groups"]) == ("alice", [])


async def test_schedules_belong_to_their_owner(secured: tuple[str, str], keycloak: LocalKeycloak) -> None:
    url, workspace = secured
    alice, bob, carol, dana = [
        bearer(await keycloak.access_token(name)) for name in ("alice", "bob", "carol", "dana")
    ]
    write_notebook(Path(workspace) / "alice" / "nightly.ipynb", "x = 1")
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        created = await client.post(
            "/db/notebooks",
            json={"name": "nightly", "file_path": "nightly.ipynb", "username": "alice"},
            headers=alice,
        )
        notebook_id = created.json()["id"]
        body = {"notebook_id": notebook_id, "cron": "0 3 * * *"}
        # Another user's notebook: by path in their name 403 (field and rule), by id 404; a viewer 403.
        spoof = await client.post(
            "/schedules",
            json={"username": "alice", "notebook_path": "nightly.ipynb", "cron": "0 3 * * *"},
            headers=bob,
        )
        assert spoof.status_code == 403, spoof.text
        assert [(e["field"], e["rule"]) for e in spoof.json()["errors"]] == [("username", "owner")]
        assert (await client.post("/schedules", json=body, headers=bob)).status_code == 404
        assert (await client.post("/schedules", json=body, headers=carol)).status_code == 403
        assert (await client.get("/schedules", headers=bob)).json() == []

        mine = await client.post("/schedules", json=body, headers=alice)
        assert mine.status_code == 201, mine.text
        schedule_id = mine.json()["id"]
        # Its runs record alice's groups, as her token named them when she made the schedule.
        assert mine.json()["owner_groups"] == ["data-scientists"]
        started = await client.post(f"/schedules/{schedule_id}/run-now", headers=alice)
        assert started.status_code == 202, started.text
        record = await ended_record(client, started.json()["id"], alice)
        assert (record["schedule_id"], record["owner_groups"]) == (schedule_id, ["data-scientists"])
        for method, path in [
            ("GET", f"/schedules/{schedule_id}"),
            ("PATCH", f"/schedules/{schedule_id}"),
            ("DELETE", f"/schedules/{schedule_id}"),
            ("POST", f"/schedules/{schedule_id}/run-now"),
            ("GET", f"/schedules/{schedule_id}/runs"),
        ]:
            response = await client.request(
                method, path, headers=bob, json={"enabled": False} if method == "PATCH" else None
            )
            assert response.status_code == 404, (method, path, response.text)
        assert [s["id"] for s in (await client.get("/schedules", headers=dana)).json()] == [schedule_id]
        assert [s["id"] for s in (await client.get("/schedules", headers=alice)).json()] == [schedule_id]
        hook = await client.post(
            "/notifications",
            json={"schedule_id": schedule_id, "channel": "webhook", "url": "https://example.org/h"},
            headers=bob,
        )
        assert hook.status_code == 404


NETWORK_PROBE = r"""
import json, urllib.error, urllib.parse, urllib.request
import nbp

def answer(method, url, form=None, body=None):
    data, headers = None, {}
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if body is not None:
        data, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
    try:
        request = urllib.request.Request(url, data, headers, method=method)
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code

event = {"event_id": "00000000-0000-4000-8000-000000000001", "execution_id": 1, "status": "failed",
         "occurred_at": "2026-01-01T00:00:00Z", "username": "bob", "input_path": "x.ipynb"}
master_token = keycloak + "/realms/master/protocol/openid-connect/token"
nbp.record("answers", {
    "executor_runs": answer("GET", api + "/executions"),
    "history_runs": answer("GET", api + "/db/executions"),
    "history_events": answer("POST", api + "/internal/events", body=event),
    "registry": answer("GET", api + "/db/notebooks"),
    "keycloak_admin_api": answer("GET", keycloak + "/admin/realms"),
    "keycloak_master_admin": answer("POST", master_token, form={
        "grant_type": "password", "client_id": "admin-cli", "username": "admin", "password": "admin"}),
    "service_account": answer("POST", token_url, form={
        "grant_type": "client_credentials", "client_id": service_client}),
})
"""


async def test_a_run_reaches_no_platform_data_over_the_network_it_shares(
    secured: tuple[str, str], keycloak: LocalKeycloak
) -> None:
    """A sandboxed run shares the host's network (loopback included): what it can reach there answers
    only with credentials, and the run holds none -- not the executor's service account, not Keycloak's
    admin, not the caller's token."""
    url, workspace = secured
    write_notebook(
        Path(workspace) / "alice" / "network.ipynb",
        NETWORK_PROBE,
        parameters="api = ''\nkeycloak = ''\ntoken_url = ''\nservice_client = ''",
    )
    alice = bearer(await keycloak.access_token("alice"))
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        run = await client.post(
            "/execute",
            json={
                "notebook_path": "network.ipynb",
                "parameters": {
                    "api": url,
                    "keycloak": keycloak.url,
                    "token_url": keycloak.token_url,
                    "service_client": keycloak.service_client_id,
                },
            },
            headers=alice,
        )
    assert run.status_code == 200, run.text
    assert run.json()["status"] == "completed", run.json()
    answers = {r["name"]: r["value_json"] for r in run.json()["results"]}["answers"]
    assert answers.pop("keycloak_master_admin") in (400, 401), answers  # Keycloak: invalid_grant
    assert answers == {
        "executor_runs": 401,
        "history_runs": 401,
        "history_events": 401,
        "registry": 401,
        "keycloak_admin_api": 401,
        "service_account": 401,
    }, answers
