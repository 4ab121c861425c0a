"""The application factory: every service, and the all-in-one dev server, are built here the same way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from nbp_common.auth import AuthSettings, install_auth
from nbp_common.db import Database
from nbp_common.errors import ErrorBody, error_response, install_error_handlers
from nbp_common.migrations import MigrationTree, SchemaBehind, check_at_head
from nbp_common.observability import Metrics, ObservabilityMiddleware
from nbp_common.openapi import PeerDocs, merge_openapi
from nbp_common.settings import Settings

PLATFORM = "notebook-platform"
HEALTH_DATABASE_TIMEOUT = 2.0  # seconds
CLI_CLIENT_ID = "nbp-cli"  # the realm's public client for the command line (keycloak-realm/realm.json)
VERSION = version("nbp-common")

LifespanHook = Callable[[FastAPI], AbstractAsyncContextManager[None]]


@dataclass(frozen=True)
class ServiceCommand:
    """A command of a service's command line beside serving and migrating (``nbp-<service> <name>``):
    run against the service's database, which must be at the migration head; it says what it did."""

    name: str
    help: str
    run: Callable[[Settings], Coroutine[Any, Any, str]]


@dataclass(frozen=True)
class ServiceSpec:
    """What makes a service itself; everything else about its app is shared."""

    name: str
    description: str
    routers: Sequence[APIRouter]
    migrations: MigrationTree
    tags: Sequence[dict[str, str]] = ()
    default_port: int = 8000
    # Background work that lives as long as the app (the executor's workers, its outbox relay).
    lifespan_hooks: Sequence[LifespanHook] = field(default_factory=tuple)
    commands: Sequence[ServiceCommand] = ()


# Error answers documented once for every operation, so clients see the shared shape.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "Invalid input: `errors` names each field and rule."},
}


def create_app(
    specs: Sequence[ServiceSpec], settings: Settings | None = None, auth_settings: AuthSettings | None = None
) -> FastAPI:
    """One FastAPI app serving ``specs``: a single service in its container, or all of them in dev.

    Every route but the platform's own (``/``, health, readiness, metrics, docs) needs an access token
    (``NBP_AUTH=keycloak``), unless authentication is off for local development (``NBP_AUTH=none``)."""
    settings = settings or Settings()
    service = specs[0].name if len(specs) == 1 else "platform"
    title = f"{PLATFORM} {service}" if len(specs) == 1 else PLATFORM

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings)
        app.state.database = database
        try:
            async with database.engine.connect() as conn:
                for spec in specs:
                    await check_at_head(conn, spec.migrations)
            async with AsyncExitStack() as stack:
                for spec in specs:
                    for hook in spec.lifespan_hooks:
                        await stack.enter_async_context(hook(app))
                yield
        finally:
            await database.dispose()
            await authenticator.aclose()

    app = FastAPI(
        title=title,
        version=VERSION,
        description=" ".join(spec.description for spec in specs),
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        responses=COMMON_RESPONSES,
    )
    app.state.settings = settings
    app.state.specs = tuple(specs)
    auth_settings = auth_settings or AuthSettings()
    authenticator = install_auth(app, auth_settings)
    install_error_handlers(app)
    metrics = Metrics()
    app.add_middleware(ObservabilityMiddleware, metrics=metrics, service=service)
    app.include_router(_platform_router(specs, settings, auth_settings, metrics, title))
    for spec in specs:
        for router in spec.routers:
            app.include_router(router)
    return app


def _platform_router(
    specs: Sequence[ServiceSpec],
    settings: Settings,
    auth_settings: AuthSettings,
    metrics: Metrics,
    title: str,
) -> APIRouter:
    router = APIRouter(tags=["platform"])
    trees: list[MigrationTree] = [spec.migrations for spec in specs]
    peers = PeerDocs(settings.openapi_peers)
    cached_doc: dict[str, Any] = {}

    @router.get("/", summary="What this is, and where to go next")
    async def root() -> dict[str, Any]:
        return {
            "name": PLATFORM,
            "service": [spec.name for spec in specs] if len(specs) > 1 else specs[0].name,
            "version": VERSION,
            "links": {
                "docs": "/docs",
                "redoc": "/redoc",
                "openapi": "/openapi.json",
                "health": "/health",
                "ready": "/ready",
                "metrics": "/metrics",
            },
            # Where a client signs in (`nbp login` reads it): the realm and its public CLI client.
            "auth": (
                {"issuer": auth_settings.oidc_issuer, "cli_client_id": CLI_CLIENT_ID}
                if auth_settings.auth == "keycloak"
                else None
            ),
        }

    @router.get("/health", summary="The process is alive, and whether its database answers")
    async def health(request: Request) -> dict[str, Any]:
        # Always 200 (a liveness probe must not restart a process because its database is away):
        # "healthy", or "degraded" with what is wrong under "checks" (the prototype's answer, extended).
        database: Database = request.app.state.database
        try:
            async with asyncio.timeout(HEALTH_DATABASE_TIMEOUT), database.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except Exception as exc:  # any failure to reach the database is what "degraded" reports
            checks = {"database": f"not reachable: {type(exc).__name__}"}
        else:
            checks = {"database": "ok"}
        healthy = all(value == "ok" for value in checks.values())
        return {"status": "healthy" if healthy else "degraded", "version": VERSION, "checks": checks}

    @router.get(
        "/ready",
        summary="The database answers and every schema is at this code's migration head",
        responses={503: {"model": ErrorBody}},
    )
    async def ready(request: Request) -> Response:
        database: Database = request.app.state.database
        try:
            # Reading each schema's version answers both questions: the database is there, and at head.
            async with database.engine.connect() as conn:
                for tree in trees:
                    await check_at_head(conn, tree)
        except SchemaBehind as exc:
            return error_response(503, "schema_behind", str(exc))
        except Exception as exc:  # any failure to reach the database means "not ready"
            return error_response(
                503, "database_unreachable", f"database not reachable: {type(exc).__name__}"
            )
        return JSONResponse({"status": "ready", "schemas": {t.schema: "at head" for t in trees}})

    @router.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        if not cached_doc:
            app = request.app
            cached_doc.update(
                get_openapi(title=title, version=VERSION, description=app.description, routes=app.routes)
            )
        doc = merge_openapi(cached_doc, await peers.get()) if peers.urls else cached_doc
        return JSONResponse(doc)

    @router.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{title} - API")

    @router.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{title} - API")

    return router
