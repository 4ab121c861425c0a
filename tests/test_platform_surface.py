"""What every service answers the same way: /, health, readiness, metrics, docs, request ids, errors."""

import json
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asyncpg
import httpx
import pytest
from nbp_common.app import ServiceSpec
from nbp_common.settings import Settings
from nbp_registry.main import SPEC as REGISTRY
from sqlalchemy.engine import URL

from tests.support.common import app_client, asyncpg_dsn, settings_for, start_service


@pytest.fixture
async def platform(
    database_url: URL, service_specs: Sequence[ServiceSpec]
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(service_specs, settings_for(database_url)) as client:
        yield client


async def test_root_health_and_ready(platform: httpx.AsyncClient) -> None:
    root = (await platform.get("/")).json()
    assert root["name"] == "notebook-platform"
    assert root["links"]["docs"] == "/docs"
    assert (await platform.get("/health")).json()["status"] == "healthy"
    ready = (await platform.get("/ready")).json()
    assert ready["status"] == "ready"
    assert set(ready["schemas"]) == {"registry", "history"} | ready["schemas"].keys()


async def test_docs_show_every_service_together(
    platform: httpx.AsyncClient, service_specs: Sequence[ServiceSpec]
) -> None:
    doc = (await platform.get("/openapi.json")).json()
    paths = set(doc["paths"])
    for expected in (
        "/db/notebooks",
        "/db/notebooks/{id}",
        "/db/parameters/bulk/{notebook_id}",
        "/db/executions",
        "/db/executions/stats",
    ):
        assert expected in paths
    # The history's record and the executor's live state: one base shape, two names, no collision.
    schemas = doc["components"]["schemas"]
    for name in ("ExecutionRecord", "ExecutionRecordDetail", "ExecutionState"):
        properties = schemas[name]["properties"]
        assert {"parameters_used", "execution_time_seconds"} <= set(properties), name
        assert properties["parameters"]["deprecated"] is properties["duration_seconds"]["deprecated"] is True
    for page in ("/docs", "/redoc"):
        response = await platform.get(page)
        assert response.status_code == 200
        assert "/openapi.json" in response.text


async def test_one_service_shows_its_peers_operations(database_url: URL, tmp_path: Path) -> None:
    history = start_service("history", database_url, tmp_path)
    try:
        settings = Settings(
            database_url=database_url.render_as_string(hide_password=False),
            openapi_peers=[f"{history.url}/openapi.json"],
        )
        async with app_client([REGISTRY], settings) as registry:
            paths = set((await registry.get("/openapi.json")).json()["paths"])
        assert {"/db/notebooks", "/db/executions", "/db/executions/{id}"} <= paths
    finally:
        history.stop()


async def test_metrics_count_requests_by_route_template(platform: httpx.AsyncClient) -> None:
    await platform.get("/db/notebooks/12345")
    await platform.get("/db/notebooks/67890")
    text = (await platform.get("/metrics")).text
    assert (
        'nbp_http_requests_total{method="GET",route="/db/notebooks/{id}",service="platform",status="404"} 2.0'
        in text
    )
    assert "nbp_http_request_duration_seconds_bucket" in text
    assert "/db/notebooks/12345" not in text


async def test_request_ids_are_kept_or_made_and_logged(
    platform: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nbp.access")
    kept = await platform.get("/health", headers={"X-Request-ID": "trace-abc.123"})
    assert kept.headers["x-request-id"] == "trace-abc.123"
    replaced = await platform.get("/health", headers={"X-Request-ID": "bad id\nwith newline"})
    assert replaced.headers["x-request-id"] != "bad id\nwith newline"
    assert len(replaced.headers["x-request-id"]) == 32
    from nbp_common.observability import JsonFormatter

    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "nbp.access"]
    assert {"request_id": "trace-abc.123", "route": "/health", "status": 200}.items() <= lines[0].items()
    assert lines[0]["duration_ms"] >= 0


async def test_ready_is_503_when_the_database_is_gone(
    service_specs: Sequence[ServiceSpec], database_url: URL, pg_admin_url: URL
) -> None:
    async with app_client(service_specs, settings_for(database_url)) as client:
        assert (await client.get("/ready")).status_code == 200
        conn = await asyncpg.connect(asyncpg_dsn(pg_admin_url))
        await conn.execute(f'DROP DATABASE "{database_url.database}" WITH (FORCE)')
        await conn.close()
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.json()["code"] == "database_unreachable"
        assert (await client.get("/health")).status_code == 200
        listing = await client.get("/db/notebooks")
        assert listing.status_code == 503
        assert listing.json()["code"] == "unavailable"
