"""The SDK against the running platform (registry, executor, history on a real port, real kernels)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from nbp.client import AsyncClient, Client, CredentialStore, Invalid, NotFound, Run, Unavailable

from tests.support.executor import Platform

pytestmark = pytest.mark.timeout(240)

Notebook = Callable[..., Path]


@pytest.fixture
def store(tmp_path: Path) -> CredentialStore:
    return CredentialStore(tmp_path / "config")


async def test_the_whole_workflow_with_the_sync_client(
    platform: Platform, notebook: Notebook, store: CredentialStore
) -> None:
    notebook(
        platform.user("sdk") / "reports" / "square.ipynb",
        "import nbp\nnbp.record('square', n * n)",
        "label = f'{region}-{n}'\nnbp.record('label', label)",
        parameters="n = 2\nregion = 'north'",
    )

    def call_sync() -> None:
        with Client(platform.url, store=store) as client:
            assert client.health()["status"] == "healthy"
            created = client.register("/home/sdk/reports/square.ipynb", name="square", username="sdk")
            assert created["file_path"] == "reports/square.ipynb"
            client.add_parameters(
                created["id"],
                [
                    {"param_name": "n", "param_type": "integer", "default_value": 2},
                    {"param_name": "region", "param_type": "string", "default_value": "north"},
                ],
            )
            assert [p["param_type"] for p in client.parameters(created["id"])] == ["int", "str"]

            seen: list[Run] = []
            ended = client.run(created["id"], parameters={"n": 7}, on_progress=seen.append)
            assert ended["status"] == "completed", ended
            assert {r["name"]: r["value_numeric"] or r["value_json"] for r in ended["results"]} == {
                "square": 49.0,
                "label": "north-7",
            }
            assert seen[-1]["progress"]["cells_done"] == seen[-1]["progress"]["cells_total"] == 3

            ipynb = json.loads(client.output(ended["id"]))
            assert ipynb["nbformat"] == 4
            assert "<html" in client.output(ended["id"], html=True).lower()

            record = client.execution(ended["id"])
            assert record["status"] == "completed"
            assert [r["name"] for r in client.results(ended["id"])] == ["square", "label"]
            assert client.stats()["total"] >= 1
            assert any(e["id"] == ended["id"] for e in client.iter_executions(page_size=1))
            assert [f["relative_path"] for f in client.files("sdk")] == ["reports/square.ipynb"]

            notebook(platform.user("sdk") / "copy.ipynb", "x = 1", parameters="n = 2\nregion = 'north'")
            inferred = client.register("copy.ipynb", name="inferred", username="sdk", infer=True)
            assert [
                (p["param_name"], p["param_type"], p["default_value"]) for p in inferred["parameters"]
            ] == [
                ("n", "int", 2),
                ("region", "str", "north"),
            ]

    import asyncio

    await asyncio.to_thread(call_sync)


async def test_the_async_client_pages_and_raises_with_the_error_body(
    platform: Platform, store: CredentialStore
) -> None:
    async with AsyncClient(platform.url, store=store) as client:
        for index in range(5):
            await client.register(f"page/{index}.ipynb", name=f"page {index}", username="pager")
        names = [n["name"] async for n in client.iter_notebooks(username="pager", page_size=2)]
        assert names == [f"page {index}" for index in range(5)]

        with pytest.raises(Invalid) as invalid:
            await client.register("/etc/x.ipynb", name="bad", username="pager")
        assert invalid.value.status == 422
        assert invalid.value.errors[0]["field"] == "file_path"
        assert invalid.value.errors[0]["rule"] == "relative_path"
        assert invalid.value.body is not None
        assert invalid.value.body["code"] == "invalid"

        with pytest.raises(NotFound) as missing:
            await client.notebook(2**40)
        assert missing.value.request_id


async def test_a_submit_with_the_same_idempotency_key_is_one_run(
    platform: Platform, notebook: Notebook, store: CredentialStore
) -> None:
    notebook(platform.user("idem") / "once.ipynb", "x = 1")
    async with AsyncClient(platform.url, store=store) as client:
        first = await client.submit("once.ipynb", username="idem", idempotency_key="key-1")
        again = await client.submit("once.ipynb", username="idem", idempotency_key="key-1")
        other = await client.submit("once.ipynb", username="idem")
        assert first["id"] == again["id"] != other["id"]
        assert (await client.wait(other["id"], within=120))["status"] == "completed"


def test_503_is_retried_with_backoff_then_raised(store: CredentialStore) -> None:
    # A MOCK transport: a registry that answers 503 on cue is a fault this test cannot cause for real
    # without stopping a shared database under the other tests.
    answers = [503, 503, 200]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Idempotency-Key", ""))
        status = answers.pop(0) if answers else 503
        body: dict[str, Any] = (
            {"id": 1, "status": "queued"}
            if status == 200
            else {
                "detail": "the database is not reachable; try again shortly",
                "code": "unavailable",
                "status": 503,
                "errors": None,
                "request_id": "r1",
            }
        )
        return httpx.Response(status, json=body, headers={"Retry-After": "0"})

    with Client("http://nbp.test", store=store, transport=httpx.MockTransport(handler), backoff=0) as client:
        assert client.submit(3)["id"] == 1
        assert len(seen) == 3
        assert len(set(seen)) == 1, "every retry of a submit carries the same key"
        with pytest.raises(Unavailable) as unavailable:
            client.notebook(1)
        assert unavailable.value.detail == "the database is not reachable; try again shortly"
    assert not answers


def test_importing_nbp_in_a_kernel_loads_no_sdk() -> None:
    import subprocess
    import sys

    code = (
        "import sys, nbp; nbp.record('x', 1); "
        "assert not {'httpx', 'nbp.client', 'typer'} & set(sys.modules), sorted(sys.modules); "
        "assert nbp.Client.__module__ == 'nbp.client.api'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


async def test_schedules_through_the_async_client(
    platform: Platform, notebook: Notebook, store: CredentialStore
) -> None:
    notebook(platform.user("cal") / "daily.ipynb", "x = 1")
    async with AsyncClient(platform.url, store=store) as client:
        schedule = await client.create_schedule(
            "0 6 * * 1-5", notebook_path="daily.ipynb", username="cal", timezone="America/New_York"
        )
        assert len((await client.schedule(schedule["id"]))["next_fire_times"]) == 5
        assert schedule["id"] in [s["id"] for s in await client.schedules(username="cal")]
        paused = await client.update_schedule(schedule["id"], enabled=False)
        assert paused["next_fire_at"] is None
        run = await client.run_schedule_now(schedule["id"])
        assert [r["id"] for r in await client.schedule_runs(schedule["id"])] == [run["id"]]
        with pytest.raises(Invalid) as invalid:
            await client.create_schedule(
                "0 6 * * 1-5", notebook_path="daily.ipynb", username="cal", timezone="Mars"
            )
        assert invalid.value.errors[0]["field"] == "timezone"
        await client.delete_schedule(schedule["id"])
        with pytest.raises(NotFound):
            await client.schedule(schedule["id"])


async def test_both_clients_have_every_method_with_one_signature(store: CredentialStore) -> None:
    """Each method is written once (a plan): the blocking client answers, the async one answers a
    coroutine of the same; names, parameters and docs are the same on both."""
    public = {name for name in dir(Client) if not name.startswith("_")}
    assert public - {"close"} == {name for name in dir(AsyncClient) if not name.startswith("_")} - {"aclose"}
    answers: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        answers.append(request.url.path)
        return httpx.Response(200, json={"status": "healthy"})

    with Client("http://nbp.test", store=store, transport=httpx.MockTransport(handler)) as blocking:
        async with AsyncClient(
            "http://nbp.test", store=store, transport=httpx.MockTransport(handler)
        ) as asynchronous:
            for name in sorted(public - {"close", "send", "token", "username", "server"}):
                mine, theirs = getattr(blocking, name), getattr(asynchronous, name)
                assert inspect.signature(mine).parameters == inspect.signature(theirs).parameters, name
                assert mine.__doc__ == theirs.__doc__, name
            assert blocking.health() == {"status": "healthy"}
            pending = asynchronous.health()
            assert inspect.iscoroutine(pending)
            assert await pending == {"status": "healthy"}
    assert answers == ["/health", "/health"]
