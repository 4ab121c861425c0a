"""The history as a service: its spec, its app, its command line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from nbp_common.app import ServiceCommand, ServiceSpec, create_app
from nbp_common.cli import run_cli
from nbp_common.db import Database
from nbp_common.migrations import MigrationTree
from nbp_common.settings import Settings

from nbp_history.models import SCHEMA, Base
from nbp_history.retention import routes as retention_routes
from nbp_history.retention import service as retention
from nbp_history.rollups import maintain
from nbp_history.rollups.routes import router as stats
from nbp_history.runs.routes import executions, internal
from nbp_history.settings import HistorySettings


@asynccontextmanager
async def history_settings(app: FastAPI) -> AsyncIterator[None]:
    app.state.history_settings = HistorySettings()
    yield


async def purge_expired(settings: Settings) -> str:
    own = HistorySettings()
    database = Database(settings)
    try:
        async with database.sessionmaker() as session:
            report = await retention.purge(
                session, own.history_retention_days, own.history_retention_batch, own.workspace
            )
    finally:
        await database.dispose()
    return str(report)


async def rebuild_rollups(settings: Settings) -> str:
    database = Database(settings)
    try:
        async with database.sessionmaker() as session:
            counts = await maintain.rebuild(session)
    finally:
        await database.dispose()
    return "rollups rebuilt: " + ", ".join(f"{rows} {name} rows" for name, rows in counts.items())


SPEC = ServiceSpec(
    name="history",
    description="The durable record of every run, its results and errors.",
    # The stats and retention first: /db/executions/stats is not a run's id.
    routers=(stats, retention_routes.router, executions, internal),
    migrations=MigrationTree("history", SCHEMA, "nbp_history:migrations", Base.metadata),
    default_port=8013,
    lifespan_hooks=(history_settings,),
    commands=(
        ServiceCommand(
            "purge-expired",
            "remove ended runs past their retention (NBP_HISTORY_RETENTION_DAYS, per-notebook policies),"
            " their results and output notebooks, in batches; the stats keep their totals",
            purge_expired,
        ),
        ServiceCommand(
            "rebuild-rollups",
            "recompute the stats' rollups from the runs table (after a backfill or a restore)",
            rebuild_rollups,
        ),
    ),
)


def app() -> FastAPI:
    return create_app([SPEC])


def cli() -> None:
    run_cli(SPEC)
