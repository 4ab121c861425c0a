"""Test helpers and fixtures of the executor, a pytest plugin (see the root conftest): the whole
platform served on a real loopback port (the executor calls the registry and the history over HTTP,
as in ``make dev``), a workspace, notebook files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nbformat
import pytest
from nbp_common.events import TERMINAL
from nbp_platform import SERVICES
from sqlalchemy.engine import URL

from tests.support.common import asyncpg_dsn, free_port, scratch_database, served_app, settings_for


def write_notebook(
    path: Path, *cells: str, parameters: str | None = None, kernel: str | None = "python3"
) -> Path:
    """A notebook with an optional cell tagged ``parameters`` first, then one code cell per source."""
    nb = nbformat.v4.new_notebook()
    if kernel:
        nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.extend(nbformat.v4.new_code_cell(source) for source in cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def field_rules(body: dict[str, Any]) -> dict[str, str]:
    """An error answer's ``{field: rule}``."""
    return {e["field"]: e["rule"] for e in body["errors"] or []}


@dataclass
class Platform:
    url: str
    workspace: Path
    database_url: URL
    client: httpx.AsyncClient

    def user(self, name: str) -> Path:
        folder = self.workspace / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    async def register(self, username: str, path: str, parameters: list[dict[str, Any]]) -> int:
        """Register ``username``'s notebook at ``path`` with ``parameters``; its id."""
        response = await self.client.post(
            "/db/notebooks", json={"name": f"{username}-{path}", "file_path": path, "username": username}
        )
        assert response.status_code == 201, response.text
        notebook_id: int = response.json()["id"]
        response = await self.client.post(f"/db/parameters/bulk/{notebook_id}", json=parameters)
        assert response.status_code == 201, response.text
        return notebook_id

    async def wait(self, run_id: int, within: float = 60.0) -> dict[str, Any]:
        """The run once it has ended (polling the API)."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            body: dict[str, Any] = (await self.client.get(f"/executions/{run_id}")).json()
            if body["status"] in TERMINAL:
                return body
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"run {run_id} still {body['status']} after {within} s: {body}")
            await asyncio.sleep(0.1)

    async def wait_status(self, run_id: int, status: str, within: float = 30.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            body: dict[str, Any] = (await self.client.get(f"/executions/{run_id}")).json()
            if body["status"] == status:
                return body
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"run {run_id} never {status} within {within} s: {body}")
            await asyncio.sleep(0.05)

    async def history(self, run_id: int, status: str | None = None, within: float = 30.0) -> dict[str, Any]:
        """History's record of the run, once it has arrived (in ``status`` if given)."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            response = await self.client.get(f"/db/executions/{run_id}")
            if response.status_code == 200 and (status is None or response.json()["status"] == status):
                body: dict[str, Any] = response.json()
                return body
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"history has no {status or ''} record of run {run_id}: {response.text}")
            await asyncio.sleep(0.1)

    async def job_count(self) -> int:
        conn = await asyncpg.connect(asyncpg_dsn(self.database_url))
        try:
            return int(await conn.fetchval("SELECT count(*) FROM executor.jobs"))
        finally:
            await conn.close()


@pytest.fixture(scope="module")
def executor_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("workspace")


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def platform_env() -> dict[str, str]:
    """Settings a test module gives its platform on top of the defaults (override the fixture)."""
    return {}


@pytest.fixture(scope="module")
async def platform(
    pg_admin_url: URL,
    template_database: str,
    executor_workspace: Path,
    monkeypatch_module: pytest.MonkeyPatch,
    platform_env: dict[str, str],
) -> AsyncIterator[Platform]:
    """Registry, history and executor in one app on a real port (2 workers, warm kernels)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    for key, value in {
        "NBP_WORKSPACE": str(executor_workspace),
        "NBP_REGISTRY_URL": base,
        "NBP_HISTORY_URL": base,
        "NBP_EXECUTOR_WORKERS": "2",
        "NBP_EXECUTOR_LEASE_SECONDS": "5",
        "NBP_EXECUTOR_CANCEL_GRACE_SECONDS": "1",
        **platform_env,
    }.items():
        monkeypatch_module.setenv(key, value)
    async with (
        scratch_database(pg_admin_url, "nbp_exec", template_database) as url,
        served_app(SERVICES, settings_for(url), port) as served,
        httpx.AsyncClient(base_url=served, timeout=120) as client,
    ):
        yield Platform(served, executor_workspace, url, client)


@pytest.fixture
def notebook() -> Callable[..., Path]:
    return write_notebook
