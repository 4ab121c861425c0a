"""Import the platform's dashboards into Superset: at every start and every upgrade (the chart's Job).

    python import_dashboards.py                  import the bundle dashboards.py defines
    python import_dashboards.py --bundle X.zip   import that bundle instead (an export, an edited copy)
    python import_dashboards.py --write X.zip    write the bundle (and import nothing)

Runs with Superset's Python and its configuration (SUPERSET_CONFIG_PATH). The connection to the history
is ``NBP_HISTORY_DATABASE_URI`` (its password perhaps in ``NBP_HISTORY_DATABASE_URI_PASSWORD_FILE``): the
read-only role.

It goes through Superset's ``ImportAssetsCommand`` (what ``POST /api/v1/assets/import/`` runs), which
overwrites the database, datasets (their columns and metrics too), charts and dashboards that carry the
bundle's UUIDs, and rewires the charts to the imported datasets: importing twice changes nothing, an
edited chart is applied. Superset's importers overwrite only for a signed-in user with write access; here
that is ``nbp-dashboards``, an Admin that is inactive, so that nobody can ever sign in as it. The
``Platform Viewer`` role gets Gamma's permissions less every write, and read access to exactly the
bundle's datasets.
"""

from __future__ import annotations

import argparse
import io
import secrets
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dashboards
from nbp_settings import database_url
from nbp_superset_roles import VIEWER_LEAVES_OUT, VIEWER_ROLE
from sqlalchemy.engine import make_url

SERVICE_USER = "nbp-dashboards"
MASK = "XXXXXXXXXX"


def masked(uri: str) -> tuple[str, str]:
    """The URI with its password masked as Superset exports it, and the password."""
    url = make_url(uri)
    return url.set(password=MASK).render_as_string(hide_password=False), url.password or ""


def zipped(contents: dict[str, str], root: str = "nbp_dashboards") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in sorted(contents.items()):
            archive.writestr(f"{root}/{path}", text)
    return buffer.getvalue()


def unzipped(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {
            name.split("/", 1)[1]: archive.read(name).decode()
            for name in archive.namelist()
            if "/" in name and not name.endswith("/")
        }


def run_import(contents: dict[str, str], password: str) -> None:
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from flask import g
        from superset import db, security_manager
        from superset.commands.importers.v1.assets import ImportAssetsCommand
        from superset.connectors.sqla.models import SqlaTable

        user = security_manager.find_user(username=SERVICE_USER)
        if user is None:
            user = security_manager.add_user(
                username=SERVICE_USER,
                first_name="Platform",
                last_name="dashboards",
                email=f"{SERVICE_USER}@localhost",
                role=security_manager.find_role("Admin"),
                password=secrets.token_urlsafe(32),
            )
            if not user:
                raise SystemExit(f"could not create the importing user {SERVICE_USER}")
        user.active = False
        db.session.commit()
        g.user = user

        ImportAssetsCommand(contents, passwords={dashboards.DATABASE_FILE: password}).run()

        viewer = security_manager.find_role(VIEWER_ROLE) or security_manager.add_role(VIEWER_ROLE)
        grants = [
            pv
            for pv in security_manager.find_role("Gamma").permissions
            if (pv.permission.name, pv.view_menu.name) not in VIEWER_LEAVES_OUT
        ]
        for dataset in dashboards.DATASETS:
            table = db.session.query(SqlaTable).filter_by(uuid=dataset.uuid).one()
            grants.append(security_manager.add_permission_view_menu("datasource_access", table.get_perm()))
        viewer.permissions = grants
        db.session.commit()
        charts = sum(len(d.charts) for d in dashboards.DASHBOARDS)
        print(
            f"imported {len(dashboards.DASHBOARDS)} dashboards, {charts} charts, "
            f"{len(dashboards.DATASETS)} datasets",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path, help="import this bundle (.zip) instead of the generated one")
    parser.add_argument("--write", type=Path, help="write the generated bundle (.zip) and import nothing")
    args = parser.parse_args()
    uri, password = masked(database_url("NBP_HISTORY_DATABASE_URI"))
    if args.write:
        args.write.write_bytes(zipped(dashboards.bundle(uri)))
        return
    contents = unzipped(args.bundle.read_bytes()) if args.bundle else dashboards.bundle(uri)
    run_import(contents, password)


if __name__ == "__main__":
    main()
