"""``make api`` (``nbp-dev``): the API alone, every route on :8002, over an embedded PostgreSQL.

``NBP_DATABASE_URL`` pointing at another server skips the embedded one (``make dev`` passes the one it
runs). Ctrl-C and SIGTERM stop the API and then the embedded PostgreSQL; one left running by a run that
died uncleanly is stopped at the next start (see :mod:`nbp_platform.postgres`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from nbp_common import migrations
from nbp_common.app import create_app
from nbp_common.cli import refuse_unchecked_remote_bind, serve_forever
from nbp_common.observability import configure_logging
from nbp_common.settings import Settings

from nbp_platform import SERVICES
from nbp_platform.postgres import DataDirInUse, EmbeddedPostgres

logger = logging.getLogger("nbp.dev")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="nbp-dev", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("NBP_API_PORT", "8002")))
    parser.add_argument("--data-dir", type=Path, default=Path(".nbp/postgres"))
    args = parser.parse_args(argv)

    refuse_unchecked_remote_bind(args.host)
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it narrates every command at INFO
    embedded: EmbeddedPostgres | None = None
    if not settings.database_url:
        logger.info("starting the embedded PostgreSQL in %s", args.data_dir)
        try:
            embedded = EmbeddedPostgres(args.data_dir)
        except DataDirInUse as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        settings = Settings(
            database_url=embedded.database_url(settings.db_name).render_as_string(hide_password=False)
        )
        os.environ["NBP_DATABASE_URL"] = settings.database_url or ""

    # The executor calls the registry and the history over HTTP: here, this very server.
    local = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    os.environ.setdefault("NBP_REGISTRY_URL", f"http://{local}:{args.port}")
    os.environ.setdefault("NBP_HISTORY_URL", f"http://{local}:{args.port}")

    try:
        for spec in SERVICES:
            migrations.upgrade(spec.migrations, settings.sqlalchemy_url)
        logger.info("one app for %s", ", ".join(s.name for s in SERVICES))
        serve_forever(create_app(SERVICES, settings), args.host, args.port)
    except KeyboardInterrupt:
        pass
    finally:
        # uvicorn turns Ctrl-C and SIGTERM into a graceful shutdown that returns here.
        if embedded is not None:
            embedded.stop()
    sys.exit(0)
