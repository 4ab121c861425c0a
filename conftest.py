"""Fixtures for every test in the repository: a real PostgreSQL (see ``nbp_common.testing``) and an
in-process client of each service, over a database of the test's own."""

from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from nbp_common.app import ServiceSpec
from nbp_common.testing import app_client, settings_for
from nbp_history.main import SPEC as HISTORY
from nbp_platform import SERVICES
from nbp_registry.main import SPEC as REGISTRY
from sqlalchemy.engine import URL

# The executor's fixtures (a served platform, notebook files) are a plugin, like the database ones.
pytest_plugins = ["nbp_common.testing", "nbp_executor.testing"]


@pytest.fixture(scope="session")
def service_specs() -> Sequence[ServiceSpec]:
    return SERVICES


@pytest.fixture
async def registry(database_url: URL) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client([REGISTRY], settings_for(database_url)) as client:
        yield client


@pytest.fixture
async def history(database_url: URL) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client([HISTORY], settings_for(database_url)) as client:
        yield client
