"""Property-based fuzzing of the executor's OpenAPI document: whatever a client sends, no operation
answers with a 5xx. The executor runs as a process beside a registry process (it asks it about
notebooks), over a database of its own, with an empty workspace and no workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from sqlalchemy.engine import URL

from tests.support.common import scratch_database, start_service


@pytest.fixture(scope="module")
async def executor_schema(
    pg_admin_url: URL, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[schemathesis.BaseSchema]:
    logs: Path = tmp_path_factory.mktemp("executor-fuzz")
    async with scratch_database(pg_admin_url, "nbp_fuzz_exec", template_database) as database:
        registry = start_service("registry", database, logs, NBP_LOG_LEVEL="WARNING")
        executor = start_service(
            "executor",
            database,
            logs,
            NBP_LOG_LEVEL="WARNING",
            NBP_WORKSPACE=str(logs / "workspace"),
            NBP_REGISTRY_URL=registry.url,
            NBP_HISTORY_URL=registry.url,
            NBP_EXECUTOR_WORKERS="0",
        )
        try:
            schema = schemathesis.openapi.from_url(f"{executor.url}/openapi.json")
            schema.config.update(base_url=executor.url)
            yield schema
        finally:
            executor.stop()
            registry.stop()


executor_api = schemathesis.pytest.from_fixture("executor_schema")


@executor_api.include(
    path_regex="^/(execute|run-notebook|execute-notebook|list-notebooks|executions)"
).parametrize()
@settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None
)
def test_executor_never_answers_5xx(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[schemathesis.checks.not_a_server_error])
