"""Test fixtures for Superset, a pytest plugin (see the root conftest): the real Superset from its own
environment, initialised into a metadata database of its own on the tests' PostgreSQL, reading the
history of the executor plugin's served ``platform`` through the read-only role, signing in through the
local Keycloak; and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from nbp_superset.launcher import (
    Databases,
    Layout,
    Login,
    ensure_installed,
    import_dashboards,
    initialise,
    load_keycloak_script,
    prepare_databases,
    serve_command,
    superset_environment,
)
from sqlalchemy.engine import URL

from tests.support.browser import launch_options
from tests.support.common import ServiceProcess, drop_database, free_port, start_process
from tests.support.executor import Platform
from tests.support.keycloak import LocalKeycloak


def artifacts_dir() -> Path:
    """Where tests leave what a person may want to look at (screenshots): NBP_TEST_ARTIFACTS or
    .cache/test-artifacts in the checkout."""
    folder = Path(
        os.environ.get("NBP_TEST_ARTIFACTS") or Layout.of_checkout().repo / ".cache" / "test-artifacts"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class SupersetServer:
    url: str
    env: dict[str, str]
    layout: Layout
    databases: Databases
    process: ServiceProcess

    def import_dashboards(self, *args: str) -> None:
        import_dashboards(self.layout, self.env, *args)


@pytest.fixture(scope="session")
def superset_layout() -> Layout:
    """The checkout's Superset environment, installed from the lock file if it is not yet."""
    layout = Layout.of_checkout()
    ensure_installed(layout)
    return layout


@pytest.fixture(scope="module")
def superset(
    superset_layout: Layout,
    keycloak: LocalKeycloak,
    pg_admin_url: URL,
    platform: Platform,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SupersetServer]:
    """Superset serving on a free loopback port over the platform's history (migrate, init, import)."""
    values = {
        "NBP_SUPERSET_SECRET_KEY": secrets.token_urlsafe(32),
        "NBP_SUPERSET_DB_PASSWORD": secrets.token_urlsafe(16),
        "NBP_SUPERSET_RO_PASSWORD": secrets.token_urlsafe(16),
    }
    # The launcher creates it, owned by Superset's role.
    metadata = pg_admin_url.set(database=f"superset_test_{uuid.uuid4().hex[:12]}")
    state = tmp_path_factory.mktemp("superset")
    try:
        databases = prepare_databases(
            pg_admin_url.set(database="postgres"),
            values,
            platform_database=str(platform.database_url.database),
            metadata_database=str(metadata.database),
        )
        secret = load_keycloak_script(superset_layout).settings()["NBP_SUPERSET_CLIENT_SECRET"]
        port = free_port()
        env = superset_environment(
            superset_layout,
            databases,
            Login(issuer=keycloak.issuer, client_secret=secret),
            values["NBP_SUPERSET_SECRET_KEY"],
            port,
            state / "home",
        )
        initialise(superset_layout, env, state)
        process = start_process(
            serve_command(superset_layout, port), env, port, state / "superset.log", timeout=300
        )
        try:
            yield SupersetServer(process.url, env, superset_layout, databases, process)
        finally:
            process.stop()
    finally:
        asyncio.run(drop_database(pg_admin_url, metadata))


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (never a browser Playwright downloads)."""
    options = launch_options()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(**options)
        try:
            yield launched
        finally:
            await launched.close()


def is_on(url: str, base: str) -> bool:
    parsed, expected = urlparse(url), urlparse(base)
    return (parsed.hostname, parsed.port) == (expected.hostname, expected.port)
