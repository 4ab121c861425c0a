"""Wait until Superset's metadata database is ready for this Superset: migrated to the head of the
installed Superset's migrations, and the platform's dashboards imported (the chart's init Job does both).

    python wait_for_init.py [--timeout SECONDS]

The chart's web pods run it first, so that no pod serves a database an older (or newer) version left.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dashboards
import superset
from alembic.script import ScriptDirectory
from nbp_settings import database_url
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError


def missing(url: str, head: str) -> str | None:
    """What is not there yet, or None."""
    engine = create_engine(url, pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            if version != head:
                return f"the metadata database is at {version}, this Superset needs {head}"
            found = {
                str(row[0])
                for row in conn.execute(
                    text("SELECT uuid FROM dashboards WHERE uuid IN :uuids").bindparams(
                        uuids=tuple(d.uuid for d in dashboards.DASHBOARDS)
                    )
                )
            }
            absent = [d.title for d in dashboards.DASHBOARDS if d.uuid not in found]
            return f"dashboards not imported yet: {', '.join(absent)}" if absent else None
    except SQLAlchemyError as error:
        return f"the metadata database does not answer as expected yet ({type(error).__name__})"
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    head = ScriptDirectory(str(Path(superset.__file__).parent / "migrations")).get_current_head()
    url = database_url("NBP_SUPERSET_DATABASE_URI")
    deadline = time.monotonic() + args.timeout
    while (reason := missing(url, str(head))) is not None:
        if time.monotonic() > deadline:
            raise SystemExit(
                f"gave up after {args.timeout:.0f} s: {reason} (is the superset-init Job failing?)"
            )
        print(f"waiting: {reason}", flush=True)
        time.sleep(5)
    print("Superset's metadata database is ready", flush=True)


if __name__ == "__main__":
    main()
