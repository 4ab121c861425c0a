"""The registry as a service: its spec, its app, its command line."""

from __future__ import annotations

from fastapi import FastAPI
from nbp_common.app import ServiceSpec, create_app
from nbp_common.cli import run_cli
from nbp_common.migrations import MigrationTree

from nbp_registry.models import SCHEMA, Base
from nbp_registry.routes import notebooks, parameters

SPEC = ServiceSpec(
    name="registry",
    description="Notebooks and their typed, validated parameter definitions.",
    routers=(notebooks, parameters),
    migrations=MigrationTree("registry", SCHEMA, "nbp_registry:migrations", Base.metadata),
    default_port=8011,
)


def app() -> FastAPI:
    return create_app([SPEC])


def cli() -> None:
    run_cli(SPEC)
