"""Property-based fuzzing of each service's OpenAPI document (schemathesis): whatever a client sends,
no operation answers with a 5xx. Each service runs as a real process over a database of its own."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from sqlalchemy.engine import URL

from tests.support.common import scratch_database, start_service


@pytest.fixture(scope="module")
async def fuzz_database(pg_admin_url: URL, template_database: str) -> AsyncIterator[URL]:
    async with scratch_database(pg_admin_url, "nbp_fuzz", template_database) as database:
        yield database


def _live_schema(name: str, database: URL, log_dir: Path) -> Iterator[schemathesis.BaseSchema]:
    service = start_service(name, database, log_dir, NBP_LOG_LEVEL="WARNING")
    try:
        schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
        schema.config.update(base_url=service.url)
        yield schema
    finally:
        service.stop()


@pytest.fixture(scope="module")
def registry_schema(
    fuzz_database: URL, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[schemathesis.BaseSchema]:
    yield from _live_schema("registry", fuzz_database, tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="module")
def history_schema(
    fuzz_database: URL, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[schemathesis.BaseSchema]:
    yield from _live_schema("history", fuzz_database, tmp_path_factory.mktemp("history"))


FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)

registry_api = schemathesis.pytest.from_fixture("registry_schema")
history_api = schemathesis.pytest.from_fixture("history_schema")


@registry_api.parametrize()
@FUZZ
def test_registry_never_answers_5xx(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[schemathesis.checks.not_a_server_error])


@history_api.parametrize()
@FUZZ
def test_history_never_answers_5xx(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[schemathesis.checks.not_a_server_error])
