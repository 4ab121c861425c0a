"""The command line every service image runs: ``nbp-<service> serve|migrate|downgrade|current``, and the
service's own commands."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from collections.abc import Sequence

import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import create_async_engine

from nbp_common import migrations
from nbp_common.app import ServiceSpec, create_app
from nbp_common.auth import AuthSettings, InsecureBindError, assert_loopback_only
from nbp_common.observability import configure_logging
from nbp_common.settings import Settings

logger = logging.getLogger("nbp.serve")


async def _schema_state(settings: Settings, trees: Sequence[migrations.MigrationTree]) -> list[str]:
    engine = create_async_engine(settings.sqlalchemy_url)
    problems = []
    try:
        async with engine.connect() as conn:
            for tree in trees:
                try:
                    await migrations.check_at_head(conn, tree)
                except migrations.SchemaBehind as exc:
                    problems.append(str(exc))
    finally:
        await engine.dispose()
    return problems


def ensure_schemas_at_head(settings: Settings, specs: Sequence[ServiceSpec]) -> None:
    """Refuse to start, saying which command to run, when a schema is not at this code's head."""
    problems = asyncio.run(_schema_state(settings, [spec.migrations for spec in specs]))
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2)


def refuse_unchecked_remote_bind(host: str) -> None:
    """NBP_AUTH=none serves loopback only: refuse to start on any other address."""
    try:
        assert_loopback_only(host, AuthSettings())
    except InsecureBindError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def run_cli(spec: ServiceSpec, argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"nbp-{spec.name}", description=spec.description)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=spec.default_port)
    migrate = commands.add_parser("migrate", help="upgrade the service's schema (default: to head)")
    migrate.add_argument("revision", nargs="?", default="head")
    down = commands.add_parser("downgrade", help="downgrade the service's schema (base removes its tables)")
    down.add_argument("revision")
    commands.add_parser("current", help="print the schema's revision and the code's head")
    own = {command.name: command for command in spec.commands}
    for command in spec.commands:
        commands.add_parser(command.name, help=command.help)
    args = parser.parse_args(argv)

    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    tree = spec.migrations
    if args.command == "migrate":
        migrations.upgrade(tree, settings.sqlalchemy_url, args.revision)
    elif args.command == "downgrade":
        migrations.downgrade(tree, settings.sqlalchemy_url, args.revision)
    elif args.command == "current":
        problems = asyncio.run(_schema_state(settings, [tree]))
        print(problems[0] if problems else f"{tree.schema}: at head {migrations.head_revision(tree)}")
    elif args.command in own:
        ensure_schemas_at_head(settings, [spec])
        print(asyncio.run(own[args.command].run(settings)))
    else:
        refuse_unchecked_remote_bind(args.host)
        ensure_schemas_at_head(settings, [spec])
        serve_forever(create_app([spec], settings), args.host, args.port)


def serve_forever(app: FastAPI, host: str, port: int) -> None:
    """Serve ``app`` until stopped: the one start path of every server (``nbp-<service> serve``,
    ``nbp-dev``). What exists by now (modules, the app, its routes and models) lives as long as the
    process: frozen out of the garbage collector's passes, so that a full collection walks the objects of
    requests only, not the 10^5 of the platform's code (a pause in every request it hits)."""
    gc.collect()
    gc.freeze()
    logger.info(
        "serving on http://%s:%d (%d objects of the start frozen out of the collector's passes)",
        host,
        port,
        gc.get_freeze_count(),
    )
    uvicorn.run(app, host=host, port=port, log_config=None)
