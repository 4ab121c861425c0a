"""The executor as a service: its spec, its app, its command line."""

from __future__ import annotations

from fastapi import FastAPI
from nbp_common.app import ServiceSpec, create_app
from nbp_common.cli import run_cli
from nbp_common.migrations import MigrationTree

from nbp_executor.api.routes import executions, seed
from nbp_executor.models import SCHEMA, Base
from nbp_executor.notifications.routes import notifications
from nbp_executor.runtime import executor_runtime
from nbp_executor.schedules.routes import schedules

SPEC = ServiceSpec(
    name="executor",
    description="Runs notebooks with Papermill in fresh warm kernels: a durable queue, timeouts, cancel.",
    routers=(seed, executions, schedules, notifications),
    migrations=MigrationTree("executor", SCHEMA, "nbp_executor:migrations", Base.metadata),
    tags=(
        {"name": "executions", "description": "Runs: submit, follow, cancel, fetch the output."},
        {"name": "schedules", "description": "Notebooks on a calendar, fired exactly once per fire time."},
        {
            "name": "notifications",
            "description": "Webhooks and e-mail on a run's failure, success, recovery.",
        },
    ),
    default_port=8012,
    lifespan_hooks=(executor_runtime,),
)


def app() -> FastAPI:
    return create_app([SPEC])


def cli() -> None:
    run_cli(SPEC)
