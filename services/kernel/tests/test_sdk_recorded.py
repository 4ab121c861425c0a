"""``run`` answers once the history has the run's ending: the executor's outbox delivers it a moment
after the run ends, and a caller reading the history right after ``run`` (``execution``, ``results``)
must see the ended run, not ``running``.

That moment is made to last: the platform's history is reached through a gate (the executor's
deliveries and the client's reads alike) that holds each run's ending on its way to the history until
someone has read the run's record without it. A client that answers without looking at the history
leaves the ending held, and its caller then reads ``running``."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from nbp.client import AsyncClient, Client, CredentialStore
from nbp.client.models import TERMINAL

from tests.support.common import loopback_socket, serve_asgi
from tests.support.executor import Platform

pytestmark = pytest.mark.timeout(240)

Notebook = Callable[..., Path]
RECORD_PATH = re.compile(r"^/db/executions/(\d+)$")
HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "content-encoding"})


class HistoryGate:
    """An ASGI proxy in front of the platform: a run's ending (``POST /internal/events`` with a final
    status) waits until a ``GET /db/executions/{id}`` of that run has answered without it."""

    def __init__(self) -> None:
        self.upstream = ""
        self.read_without_ending: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self.held: set[int] = set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        method, path = scope["method"], scope["path"]
        if method == "POST" and path == "/internal/events":
            event = json.loads(body)
            if event["status"] in TERMINAL:
                self.held.add(event["execution_id"])
                await self.read_without_ending[event["execution_id"]].wait()
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k.decode() not in HOP_HEADERS]
        query = scope["query_string"].decode()
        async with httpx.AsyncClient(base_url=self.upstream, timeout=60) as client:
            response = await client.request(
                method, path + (f"?{query}" if query else ""), content=body, headers=headers
            )
        record = RECORD_PATH.match(path) if method == "GET" else None
        if record is not None and self._without_ending(response):
            self.read_without_ending[int(record.group(1))].set()
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [
                    (k.encode(), v.encode()) for k, v in response.headers.items() if k not in HOP_HEADERS
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.content})

    @staticmethod
    def _without_ending(response: httpx.Response) -> bool:
        """A record's answer that has no ending: not there yet, or there and not ended."""
        if response.status_code == 404:
            return True
        return response.status_code == 200 and response.json()["status"] not in TERMINAL


@pytest.fixture(scope="module")
def gate_socket() -> socket.socket:
    return loopback_socket()


@pytest.fixture(scope="module")
def platform_env(gate_socket: socket.socket) -> dict[str, str]:
    host, port = gate_socket.getsockname()[:2]
    return {"NBP_HISTORY_URL": f"http://{host}:{port}"}


@pytest.fixture(scope="module")
async def gate(platform: Platform, gate_socket: socket.socket) -> AsyncIterator[tuple[HistoryGate, str]]:
    """The gate and its URL: the whole platform, its history reached through the gate."""
    proxy = HistoryGate()
    proxy.upstream = platform.url
    async with serve_asgi(proxy, gate_socket, lifespan="off") as url:
        yield proxy, url


async def test_run_answers_once_the_history_has_the_ending(
    platform: Platform, gate: tuple[HistoryGate, str], notebook: Notebook, tmp_path: Path
) -> None:
    proxy, url = gate
    notebook(platform.user("dev") / "recorded.ipynb", "import nbp\nnbp.record('n', n)", parameters="n = 1")
    store = CredentialStore(tmp_path / "config")

    def run_sync() -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
        with Client(url, store=store) as client:
            ended = client.run("recorded.ipynb", parameters={"n": 2})
            return dict(ended), dict(client.execution(ended["id"])), list(client.results(ended["id"]))

    async with AsyncClient(url, store=store) as client:
        ended_async = await client.run("recorded.ipynb", parameters={"n": 3})
        record_async = await client.execution(ended_async["id"])
        results_async = await client.results(ended_async["id"])
    ended, record, results = await asyncio.to_thread(run_sync)

    for run, recorded, values, n in (
        (ended_async, record_async, results_async, 3),
        (ended, record, results, 2),
    ):
        assert run["status"] == "completed", run
        # The ending was held until the client read the record without it: the check above is real.
        assert run["id"] in proxy.held
        assert recorded["status"] == "completed", recorded
        assert [(r["name"], r["value_numeric"]) for r in values] == [("n", float(n))]
