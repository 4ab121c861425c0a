"""Faults and load with real processes: ``nbp-registry``, ``nbp-history`` and ``nbp-executor serve`` on
loopback ports over one real PostgreSQL database, executors killed with SIGKILL, the history stopped."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import URL

from tests.support.common import RestartableService, asyncpg_dsn

Notebook = Callable[..., Path]


class Cluster:
    def __init__(self, database_url: URL, workspace: Path, tmp: Path, **executor_env: str) -> None:
        self.database_url = database_url
        self.dsn = asyncpg_dsn(database_url)
        self.workspace = workspace
        self.registry = RestartableService("registry", self._env(), log_dir=tmp)
        self.history = RestartableService("history", self._env(), log_dir=tmp)
        self.executor_env = {
            **self._env(),
            "NBP_WORKSPACE": str(workspace),
            "NBP_REGISTRY_URL": self.registry.url,
            "NBP_HISTORY_URL": self.history.url,
            "NBP_EXECUTOR_LEASE_SECONDS": "5",
            "NBP_EXECUTOR_RELAY_MAX_BACKOFF_SECONDS": "1",
            **executor_env,
        }
        self.tmp = tmp
        self.executors: list[RestartableService] = []

    def _env(self) -> dict[str, str]:
        return {
            "NBP_DATABASE_URL": self.database_url.render_as_string(hide_password=False),
            "NBP_LOG_JSON": "false",
            "NBP_LOG_LEVEL": "WARNING",
        }

    def executor(self) -> RestartableService:
        process = RestartableService("executor", self.executor_env, log_dir=self.tmp)
        self.executors.append(process)
        return process

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def value(self, sql: str, *args: Any) -> Any:
        rows = await self.fetch(sql, *args)
        return rows[0][0]

    async def until(self, sql: str, expected: Any, within: float, *args: Any) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            found = await self.value(sql, *args)
            if found == expected:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{sql!r} is {found!r}, not {expected!r}, after {within} s")
            await asyncio.sleep(0.2)

    async def stop_all(self) -> None:
        for process in [*self.executors, self.history, self.registry]:
            await process.stop(grace=10)


async def wait_for_file(path: Path, within: float) -> None:
    for _ in range(int(within * 10)):
        if await asyncio.to_thread(path.exists):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} did not appear within {within} s")


@asynccontextmanager
async def cluster(database_url: URL, tmp_path: Path, **executor_env: str) -> AsyncIterator[Cluster]:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    running = Cluster(database_url, workspace, logs, **executor_env)
    try:
        await asyncio.gather(running.registry.start(), running.history.start())
        yield running
    finally:
        await running.stop_all()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("max_attempts", [1, 2])
async def test_kill_9_mid_run_is_retried_or_failed_never_left_running(
    database_url: URL, tmp_path: Path, notebook: Notebook, max_attempts: int
) -> None:
    async with cluster(
        database_url, tmp_path, NBP_EXECUTOR_WORKERS="1", NBP_EXECUTOR_MAX_ATTEMPTS=str(max_attempts)
    ) as running:
        folder = running.workspace / "kim"
        ledger = folder / "ledger.txt"  # in the owner's folder: all a sandboxed run can write to
        # The first attempt appends and then sleeps (to be killed); a second one appends and ends.
        notebook(
            folder / "crash.ipynb",
            "import time\nwith open('ledger.txt', 'a') as f:\n    f.write('attempt\\n')\n"
            "if len(open('ledger.txt').readlines()) == 1:\n    time.sleep(120)",
        )
        first = running.executor()
        await first.start()
        async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
            response = await client.post(
                "/executions", json={"username": "kim", "notebook_path": "crash.ipynb"}
            )
            assert response.status_code == 202, response.text
            run_id = response.json()["id"]
            await running.until("SELECT status FROM executor.jobs WHERE id = $1", "running", 60, run_id)
        await wait_for_file(ledger, 60)
        await first.kill()  # SIGKILL: no shutdown code runs, the lease is left to expire

        second = running.executor()
        await second.start()
        await running.until(
            "SELECT status IN ('completed', 'failed') FROM executor.jobs WHERE id = $1", True, 60, run_id
        )
        job = (await running.fetch("SELECT * FROM executor.jobs WHERE id = $1", run_id))[0]
        if max_attempts == 1:
            assert job["status"] == "failed"
            assert job["error_message"].startswith("executor lost")
            assert job["attempt"] == 1
            assert ledger.read_text().count("attempt") == 1
        else:
            assert job["status"] == "completed"
            assert job["attempt"] == 2
            assert ledger.read_text().count("attempt") == 2
        assert await running.value("SELECT count(*) FROM executor.jobs WHERE status = 'running'") == 0
        # The history has the ending too, relayed by the surviving executor.
        await running.until(
            "SELECT status FROM history.notebook_executions WHERE id = $1", job["status"], 30, run_id
        )
        assert (
            await running.value("SELECT attempt FROM history.notebook_executions WHERE id = $1", run_id)
            == (job["attempt"])
        )


@pytest.mark.timeout(300)
async def test_history_outage_loses_nothing_and_duplicates_nothing(
    database_url: URL, tmp_path: Path, notebook: Notebook
) -> None:
    async with cluster(database_url, tmp_path, NBP_EXECUTOR_WORKERS="2") as running:
        notebook(
            running.workspace / "hal" / "tiny.ipynb", "import nbp\nnbp.record('v', n)", parameters="n = 0"
        )
        executor = running.executor()
        await executor.start()
        await running.history.stop()
        async with httpx.AsyncClient(base_url=executor.url, timeout=60) as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        "/executions",
                        json={"username": "hal", "notebook_path": "tiny.ipynb", "parameters": {"n": n}},
                    )
                    for n in range(50)
                )
            )
        assert all(r.status_code == 202 for r in responses), [
            r.text for r in responses if r.status_code != 202
        ]
        ids = sorted(r.json()["id"] for r in responses)
        await running.until("SELECT count(*) FROM executor.jobs WHERE status = 'completed'", 50, 240)
        assert await running.value("SELECT count(*) FROM executor.outbox WHERE delivered_at IS NULL") > 0

        await running.history.start()
        await running.until("SELECT count(*) FROM executor.outbox WHERE delivered_at IS NULL", 0, 60)

        records = await running.fetch(
            "SELECT id, status, parameters_used::text AS p, started_at, completed_at, worker "
            "FROM history.notebook_executions ORDER BY id"
        )
        assert [r["id"] for r in records] == ids
        assert all(r["status"] == "completed" for r in records)
        assert all(r["started_at"] and r["completed_at"] and r["worker"] for r in records)
        results = await running.fetch(
            "SELECT execution_id, value_numeric FROM history.execution_results ORDER BY execution_id"
        )
        assert len(results) == 50
        assert sorted(r["value_numeric"] for r in results) == [float(n) for n in range(50)]
        # Every event was applied exactly once: one processed event per outbox row, no duplicates.
        outbox = await running.value("SELECT count(*) FROM executor.outbox")
        assert outbox == 150  # queued, running, completed for each run
        assert await running.value("SELECT count(*) FROM history.processed_events") == outbox
        assert (
            await running.value("SELECT count(*) FROM history.processed_events WHERE outcome = 'applied'")
            == outbox
        )


@pytest.mark.timeout(600)
async def test_300_submissions_from_30_clients_to_2_executors_run_exactly_once(
    database_url: URL, tmp_path: Path, notebook: Notebook
) -> None:
    async with cluster(database_url, tmp_path, NBP_EXECUTOR_WORKERS="2") as running:
        ledger = running.workspace / "load" / "ledger.txt"
        notebook(
            running.workspace / "load" / "append.ipynb",
            "with open('ledger.txt', 'a') as f:\n    f.write(token + '\\n')",
            parameters="token = ''",
        )
        executors = [running.executor(), running.executor()]
        await asyncio.gather(*(e.start() for e in executors))
        clients = [httpx.AsyncClient(base_url=e.url, timeout=60) for e in executors]
        try:

            async def client_task(c: int) -> list[int]:
                ids = []
                for i in range(10):
                    token = f"c{c}-r{i}"
                    response = await clients[(c + i) % 2].post(
                        "/executions",
                        json={
                            "username": "load",
                            "notebook_path": "append.ipynb",
                            "parameters": {"token": token},
                        },
                    )
                    assert response.status_code == 202, response.text
                    ids.append(response.json()["id"])
                return ids

            submitted = [i for ids in await asyncio.gather(*(client_task(c) for c in range(30))) for i in ids]
        finally:
            for client in clients:
                await client.aclose()
        assert len(set(submitted)) == 300
        await running.until(
            "SELECT count(*) FROM executor.jobs "
            "WHERE status IN ('completed', 'failed', 'cancelled', 'timed_out')",
            300,
            540,
        )
        assert await running.value("SELECT count(*) FROM executor.jobs") == 300
        not_completed = await running.fetch(
            "SELECT id, status, error_message FROM executor.jobs WHERE status <> 'completed'"
        )
        assert [dict(run) for run in not_completed] == []
        assert await running.value("SELECT max(attempt) FROM executor.jobs") == 1
        lines = ledger.read_text().splitlines()
        assert len(lines) == 300
        assert sorted(lines) == sorted(f"c{c}-r{i}" for c in range(30) for i in range(10))
        # Both processes did work.
        workers = await running.fetch("SELECT DISTINCT split_part(worker, ':', 2) AS pid FROM executor.jobs")
        assert len(workers) == 2
        await running.until("SELECT count(*) FROM executor.outbox WHERE delivered_at IS NULL", 0, 60)
        assert (
            await running.value("SELECT count(*) FROM history.notebook_executions WHERE status = 'completed'")
            == 300
        )


def test_kernels_do_not_inherit_the_executors_settings() -> None:
    # The executor strips its own settings from the kernels' environment.
    from nbp_executor.runners.kernels import kernel_environment

    env = kernel_environment({"NBP_DATABASE_URL": "postgresql://secret", "PATH": os.environ.get("PATH", "")})
    assert "NBP_DATABASE_URL" not in env
    assert "PATH" in env
