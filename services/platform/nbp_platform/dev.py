"""``make dev``: an embedded PostgreSQL under ``.nbp/``, every schema migrated, every route on :8002.

``NBP_DATABASE_URL`` pointing at another server skips the embedded one. Ctrl-C stops the API and then
the embedded PostgreSQL, so no server process outlives ``make dev``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import uvicorn
from nbp_common import migrations
from nbp_common.app import create_app
from nbp_common.cli import refuse_unchecked_remote_bind
from nbp_common.observability import configure_logging
from nbp_common.settings import Settings
from sqlalchemy.engine import make_url

from nbp_platform import SERVICES

logger = logging.getLogger("nbp.dev")


class EmbeddedPostgres:
    """pgserver's PostgreSQL, its data kept in ``data_dir`` across restarts."""

    def __init__(self, data_dir: Path) -> None:
        import pgserver

        data_dir.mkdir(parents=True, exist_ok=True)
        # "stop" (not "delete"): the data stays for the next `make dev`.
        self._server = pgserver.get_server(data_dir.resolve(), cleanup_mode="stop")
        self.url = make_url(self._server.get_uri()).set(drivername="postgresql+asyncpg")
        self.data_dir = data_dir

    def ensure_database(self, name: str) -> None:
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")
        if "(1 row)" not in exists:
            self._server.psql(f'CREATE DATABASE "{name}";')

    def stop(self) -> None:
        self._server._cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="nbp-dev", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--data-dir", type=Path, default=Path(".nbp/postgres"))
    args = parser.parse_args(argv)

    refuse_unchecked_remote_bind(args.host)
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it narrates every command at INFO
    embedded: EmbeddedPostgres | None = None
    if not settings.database_url:
        logger.info("starting the embedded PostgreSQL in %s", args.data_dir)
        embedded = EmbeddedPostgres(args.data_dir)
        embedded.ensure_database(settings.db_name)
        settings = Settings(
            database_url=embedded.url.set(database=settings.db_name).render_as_string(hide_password=False)
        )
        os.environ["NBP_DATABASE_URL"] = settings.database_url or ""

    # The executor calls the registry and the history over HTTP: here, this very server.
    local = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    os.environ.setdefault("NBP_REGISTRY_URL", f"http://{local}:{args.port}")
    os.environ.setdefault("NBP_HISTORY_URL", f"http://{local}:{args.port}")

    try:
        for spec in SERVICES:
            migrations.upgrade(spec.migrations, settings.sqlalchemy_url)
        logger.info("serving %s on http://%s:%d", ", ".join(s.name for s in SERVICES), args.host, args.port)
        uvicorn.run(create_app(SERVICES, settings), host=args.host, port=args.port, log_config=None)
    except KeyboardInterrupt:
        pass
    finally:
        # uvicorn turns Ctrl-C and SIGTERM into a graceful shutdown that returns here.
        if embedded is not None:
            logger.info("stopping the embedded PostgreSQL")
            embedded.stop()
    sys.exit(0)
