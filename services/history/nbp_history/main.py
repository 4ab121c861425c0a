"""The history as a service: its spec, its app, its command line."""

from __future__ import annotations

from fastapi import FastAPI
from nbp_common.app import ServiceSpec, create_app
from nbp_common.cli import run_cli
from nbp_common.migrations import MigrationTree

from nbp_history.models import SCHEMA, Base
from nbp_history.routes import executions, internal

SPEC = ServiceSpec(
    name="history",
    description="The durable record of every run, its results and errors.",
    routers=(executions, internal),
    migrations=MigrationTree("history", SCHEMA, "nbp_history:migrations", Base.metadata),
    default_port=8013,
)


def app() -> FastAPI:
    return create_app([SPEC])


def cli() -> None:
    run_cli(SPEC)
