"""Pytest fixtures for every service's tests: a real PostgreSQL, one fresh database per test.

PostgreSQL comes from ``NBP_TEST_DATABASE_URL`` (a maintenance database on any server) or, by default,
an embedded server from the ``pgserver`` package started once per test session. A template database is
migrated once; each test gets ``CREATE DATABASE ... TEMPLATE`` of it, so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import asyncpg
import httpx
import pytest
from nbp_common import migrations
from nbp_common.app import ServiceSpec, create_app
from nbp_common.auth import AuthSettings
from nbp_common.settings import Settings
from sqlalchemy.engine import URL, make_url


def asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[URL]:
    """The maintenance database of a running PostgreSQL server, as an asyncpg URL."""
    external = os.environ.get("NBP_TEST_DATABASE_URL")
    if external:
        yield make_url(external).set(drivername="postgresql+asyncpg")
        return
    try:
        import pgserver
    except ImportError as exc:  # a broken install must fail loudly, never skip
        raise RuntimeError(
            "the pgserver package is missing: run `make venv` (it is in the dev group)"
        ) from exc
    pgdata = Path(tempfile.mkdtemp(prefix="nbp-test-pg-"))
    # pgserver stops the server and deletes its data when this process exits.
    server = pgserver.get_server(pgdata, cleanup_mode="delete")
    yield make_url(server.get_uri()).set(drivername="postgresql+asyncpg")


@pytest.fixture(scope="session")
def service_specs() -> Sequence[ServiceSpec]:
    """Overridden by the repository's root conftest with every service's spec."""
    raise RuntimeError("define a `service_specs` fixture listing the services under test")


async def _execute(admin_url: URL, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_database(admin_url: URL, prefix: str, template: str | None = None) -> URL:
    """A new database on the server of ``admin_url``: a copy of ``template``, or empty."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    await _execute(admin_url, f'CREATE DATABASE "{name}"{copy}')
    return admin_url.set(database=name)


async def drop_database(admin_url: URL, database: URL) -> None:
    await _execute(admin_url, f'DROP DATABASE IF EXISTS "{database.database}" WITH (FORCE)')


@asynccontextmanager
async def scratch_database(admin_url: URL, prefix: str, template: str | None = None) -> AsyncIterator[URL]:
    """A database of its own (see :func:`create_database`), dropped when done."""
    database = await create_database(admin_url, prefix, template)
    try:
        yield database
    finally:
        await drop_database(admin_url, database)


@pytest.fixture(scope="session")
def template_database(pg_admin_url: URL, service_specs: Sequence[ServiceSpec]) -> Iterator[str]:
    url = asyncio.run(create_database(pg_admin_url, "nbp_template"))
    for spec in service_specs:
        migrations.upgrade(spec.migrations, url)
    yield str(url.database)
    asyncio.run(drop_database(pg_admin_url, url))


@pytest.fixture
async def database_url(pg_admin_url: URL, template_database: str) -> AsyncIterator[URL]:
    """A database of this test's own, migrated to head."""
    async with scratch_database(pg_admin_url, "nbp_test", template_database) as database:
        yield database


@pytest.fixture
async def empty_database_url(pg_admin_url: URL) -> AsyncIterator[URL]:
    """A database with nothing in it, for migration tests."""
    async with scratch_database(pg_admin_url, "nbp_empty") as database:
        yield database


def settings_for(url: URL) -> Settings:
    return Settings(database_url=url.render_as_string(hide_password=False), log_json=False)


@asynccontextmanager
async def app_client(
    specs: Sequence[ServiceSpec], settings: Settings, auth_settings: AuthSettings | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of the app serving ``specs``, its lifespan (startup checks) included.
    Authentication is off (the development principal, an admin) unless ``auth_settings`` say otherwise."""
    app = create_app(specs, settings, auth_settings or AuthSettings(auth="none"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://nbp.test") as client:
            yield client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServiceProcess:
    """A service running as a real process, the way its container runs it."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_process(
    command: Sequence[str],
    env: dict[str, str],
    port: int,
    log: Path,
    *,
    timeout: float = 60,
    health_path: str = "/health",
) -> ServiceProcess:
    """Start ``command`` (which serves on ``port``) with exactly ``env``, and wait until its health path
    answers."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command), env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}{health_path}", timeout=1).status_code == 200:
                return ServiceProcess(process, url, log)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{command[0]} did not answer on {url} within {timeout}s:\n{log.read_text()[-4000:]}")


def start_service(name: str, database_url: URL, log_dir: Path, **env: str) -> ServiceProcess:
    """``nbp-<name> serve`` on a free loopback port, over ``database_url``."""
    port = free_port()
    executable = Path(sys.executable).with_name(f"nbp-{name}")
    return start_process(
        [str(executable), "serve", "--port", str(port)],
        {**os.environ, "NBP_DATABASE_URL": database_url.render_as_string(hide_password=False), **env},
        port,
        log_dir / f"{name}-{port}.log",
    )


# --- Real servers on the test's loop, and restartable service processes ---------------------------


async def wait_until_ready(base_url: str, within: float = 60.0, path: str = "/ready") -> None:
    deadline = asyncio.get_running_loop().time() + within
    async with httpx.AsyncClient(base_url=base_url, timeout=2.0) as client:
        while True:
            try:
                if (await client.get(path)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{base_url}{path} did not answer 200 within {within} s")
            await asyncio.sleep(0.1)


def loopback_socket(port: int = 0) -> socket.socket:
    """A TCP socket bound on loopback (``port`` 0: a free one), for :func:`serve_asgi`."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@asynccontextmanager
async def serve_asgi(
    app: Any, sock: socket.socket, lifespan: Literal["on", "off"] = "on"
) -> AsyncIterator[str]:
    """The ASGI ``app`` served by uvicorn on the running loop, on the bound ``sock``; yields its base
    URL. ``lifespan="off"`` for an app without startup and shutdown. The socket is closed afterwards."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan=lifespan))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    host, port = sock.getsockname()[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        # Until the app has shut down, however long its lifespan takes under load (the test's own
        # timeout bounds it): a timer here failed teardowns of a busy executor.
        server.should_exit = True
        try:
            await task
        finally:
            sock.close()


@asynccontextmanager
async def served_app(
    specs: Sequence[ServiceSpec], settings: Settings, port: int | None = None
) -> AsyncIterator[str]:
    """The app serving ``specs`` on a real loopback port, on the running loop (background work
    included); yields its base URL. Services that call each other over HTTP can do so through it."""
    async with serve_asgi(create_app(specs, settings), loopback_socket(port or 0)) as base_url:
        await wait_until_ready(base_url)
        yield base_url


class RestartableService:
    """``nbp-<service> serve`` as a real process that can be killed and started again on the same port
    (its own session, so a kill reaches only it); async, for tests that run on the event loop."""

    def __init__(
        self, service: str, env: dict[str, str], port: int | None = None, log_dir: Path | None = None
    ) -> None:
        self.service = service
        self.port = port or free_port()
        self.env = {**os.environ, **env}
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix=f"nbp-{service}-"))
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.service}-{self.port}.log"

    async def start(self, ready_timeout: float = 90.0) -> None:
        import shutil

        executable = shutil.which(f"nbp-{self.service}")
        if executable is None:
            raise RuntimeError(f"nbp-{self.service} is not installed in this environment: run `make venv`")
        self.starts += 1
        log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            executable,
            "serve",
            "--port",
            str(self.port),
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        try:
            await wait_until_ready(self.url, ready_timeout)
        except TimeoutError as exc:
            await self.stop()
            tail = self.log_path.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"nbp-{self.service} did not become ready; its log ends:\n{tail}") from exc

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def stop(self, grace: float = 30.0) -> None:
        """SIGTERM (graceful), then SIGKILL after ``grace`` seconds."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), grace)
        except TimeoutError:
            await self.kill()
