"""``nbp-superset``: Superset on this machine, the way ``make dev`` runs it.

    nbp-superset install   Superset into .cache/superset-venv from superset-auth/requirements.lock
    nbp-superset prepare   install; databases and roles; superset db upgrade + init; import the dashboards
    nbp-superset serve     prepare, then serve on http://127.0.0.1:$NBP_SUPERSET_PORT (8088)

Superset's metadata lives in a database of its own (``superset``, owner role ``superset``) on the
platform's PostgreSQL: the embedded one under ``.nbp/postgres`` (the same server ``nbp-dev`` uses), or the
server of ``NBP_DATABASE_URL``, whose user must be allowed to create databases and roles. The dashboards
read the history through ``superset_ro``, a login role in the history migration's read-only
``history_reader`` role. The login is the local Keycloak's (``scripts/keycloak.py``; ``NBP_OIDC_ISSUER``
or ``NBP_KEYCLOAK_PORT`` say where). Generated secrets are kept in ``.nbp/superset/secrets.env``.

``.nbp`` is the checkout's state folder, or ``NBP_STATE_DIR`` (``make dev`` passes its own): nothing is
written inside the checkout then.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import asyncpg
from nbp_common import migrations
from nbp_history.main import SPEC as HISTORY
from sqlalchemy.engine import URL, make_url

PLATFORM_DATABASE = "notebook_manager"
METADATA_DATABASE = "superset"
METADATA_ROLE = "superset"
READER_LOGIN = "superset_ro"
READER_GROUP = "history_reader"  # created by the history's migration 0004
DEFAULT_PORT = 8088
# A reader's query never runs longer than this (a dashboard over a million runs must use the rollups).
READER_STATEMENT_TIMEOUT = "30s"
GENERATED = ("NBP_SUPERSET_SECRET_KEY", "NBP_SUPERSET_DB_PASSWORD", "NBP_SUPERSET_RO_PASSWORD")


def say(message: str) -> None:
    print(f"nbp-superset: {message}", file=sys.stderr, flush=True)


class Failure(Exception):
    """Something Superset needs is missing; the message says what to do."""


@dataclass(frozen=True)
class Layout:
    """Where everything is: the checkout, and the state folder (``.nbp`` in it unless moved)."""

    repo: Path
    state_root: Path

    @property
    def auth_dir(self) -> Path:
        return self.repo / "superset-auth"

    @property
    def lock(self) -> Path:
        return self.auth_dir / "requirements.lock"

    @property
    def venv(self) -> Path:
        return self.repo / ".cache" / "superset-venv"

    @property
    def state(self) -> Path:
        return self.state_root / "superset"

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    @classmethod
    def of_checkout(cls) -> Layout:
        repo = Path(__file__).resolve().parents[3]
        return cls(repo, Path(os.environ.get("NBP_STATE_DIR") or repo / ".nbp").resolve())


# --- the environment ---------------------------------------------------------------------------------


def lock_digest(layout: Layout) -> str:
    return hashlib.sha256(layout.lock.read_bytes()).hexdigest()


def uv_executable(layout: Layout) -> str:
    bundled = layout.repo / ".cache" / "uv" / "bin" / "uv"
    found = str(bundled) if bundled.exists() else shutil.which("uv")
    if not found:
        raise Failure("uv is needed to install Superset: run `make venv` first (it bootstraps .cache/uv)")
    return found


def ensure_installed(layout: Layout) -> None:
    """Superset's own virtualenv, exactly the lock file (re-synced when the lock changes)."""
    stamp = layout.venv / ".nbp-lock.sha256"
    digest = lock_digest(layout)
    if stamp.exists() and stamp.read_text().strip() == digest and layout.bin("superset").exists():
        return
    uv = uv_executable(layout)
    python = os.environ.get("UV_PYTHON") or sys.executable
    say(
        f"installing Superset into {layout.venv} from {layout.lock.relative_to(layout.repo)} "
        "(about 0.8 GB; the first time takes a few minutes, uv reports each step)"
    )
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    if not layout.bin("python").exists():
        subprocess.run([uv, "venv", "--python", python, str(layout.venv)], check=True, env=env)
    subprocess.run(
        [uv, "pip", "sync", "--python", str(layout.bin("python")), str(layout.lock)], check=True, env=env
    )
    stamp.write_text(digest + "\n")
    say("Superset installed")


def stored_secrets(state: Path) -> dict[str, str]:
    """The generated secrets of this checkout (mode 600), created on first use; the environment wins."""
    state.mkdir(parents=True, exist_ok=True)
    path = state / "secrets.env"
    stored: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                stored[key.strip()] = value.strip()
    if any(key not in stored for key in GENERATED):
        for key in GENERATED:
            stored.setdefault(key, secrets.token_urlsafe(32))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("# Generated by nbp-superset for this checkout's local Superset; development only.\n")
            out.writelines(f"{key}={stored[key]}\n" for key in GENERATED)
    return {key: os.environ.get(key) or stored[key] for key in GENERATED}


# --- the databases -----------------------------------------------------------------------------------


def asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def _ensure_role(conn: asyncpg.Connection, role: str, password: str, *extra: str) -> None:
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    verb = "ALTER" if exists else "CREATE"
    await conn.execute(f"{verb} ROLE {quote_ident(role)} LOGIN PASSWORD {quote_literal(password)}")
    for statement in extra:
        await conn.execute(statement)


async def _prepare(
    admin: URL, platform_database: str, metadata_database: str, values: Mapping[str, str]
) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(admin))
    try:
        await _ensure_role(conn, METADATA_ROLE, values["NBP_SUPERSET_DB_PASSWORD"])
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", metadata_database):
            await conn.execute(
                f"CREATE DATABASE {quote_ident(metadata_database)} OWNER {quote_ident(METADATA_ROLE)}"
            )
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", READER_GROUP):
            raise Failure(f"role {READER_GROUP} is missing: the history schema is not migrated")
        await _ensure_role(
            conn,
            READER_LOGIN,
            values["NBP_SUPERSET_RO_PASSWORD"],
            f"GRANT {READER_GROUP} TO {READER_LOGIN}",
            # Belt and braces: its sessions are read-only even where a grant were too wide.
            f"ALTER ROLE {READER_LOGIN} SET default_transaction_read_only = on",
            f"ALTER ROLE {READER_LOGIN} SET statement_timeout = {quote_literal(READER_STATEMENT_TIMEOUT)}",
        )
        # The metadata database is Superset's alone; the platform's database is not for its owner role.
        await conn.execute(
            f"REVOKE ALL ON DATABASE {quote_ident(metadata_database)} FROM PUBLIC; "
            f"GRANT CONNECT ON DATABASE {quote_ident(platform_database)} TO {READER_LOGIN}"
        )
    finally:
        await conn.close()


@dataclass(frozen=True)
class Databases:
    metadata: URL  # Superset's own (psycopg2)
    history: URL  # the platform's database as superset_ro (psycopg2)


def prepare_databases(
    server: URL,
    values: Mapping[str, str],
    *,
    platform_database: str = PLATFORM_DATABASE,
    metadata_database: str = METADATA_DATABASE,
) -> Databases:
    """The history migrated (it creates the reader role), Superset's roles and metadata database."""
    platform = server.set(database=platform_database)
    migrations.upgrade(HISTORY.migrations, platform.set(drivername="postgresql+asyncpg"))
    asyncio.run(_prepare(server, platform_database, metadata_database, values))
    psycopg2 = server.set(drivername="postgresql+psycopg2")
    return Databases(
        metadata=psycopg2.set(
            username=METADATA_ROLE, password=values["NBP_SUPERSET_DB_PASSWORD"], database=metadata_database
        ),
        history=psycopg2.set(
            username=READER_LOGIN, password=values["NBP_SUPERSET_RO_PASSWORD"], database=platform_database
        ),
    )


# --- Superset ----------------------------------------------------------------------------------------


def load_keycloak_script(layout: Layout) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "nbp_keycloak_script", layout.repo / "scripts" / "keycloak.py"
    )
    if spec is None or spec.loader is None:
        raise Failure("scripts/keycloak.py is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Login:
    issuer: str
    client_secret: str


def local_keycloak_login(layout: Layout) -> Login:
    """The local Keycloak's issuer (``NBP_OIDC_ISSUER`` wins) and the superset client's secret."""
    keycloak = load_keycloak_script(layout)
    values = keycloak.settings()
    issuer = os.environ.get("NBP_OIDC_ISSUER") or keycloak.ISSUER
    return Login(
        issuer=issuer,
        client_secret=os.environ.get("NBP_SUPERSET_CLIENT_SECRET") or values["NBP_SUPERSET_CLIENT_SECRET"],
    )


def superset_environment(
    layout: Layout, databases: Databases, login: Login, secret_key: str, port: int, home: Path
) -> dict[str, str]:
    """What every Superset command of this checkout runs with (superset-auth/superset_config.py reads it)."""
    home.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(
        {
            "PATH": f"{layout.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "SUPERSET_CONFIG_PATH": str(layout.auth_dir / "superset_config.py"),
            "SUPERSET_HOME": str(home),
            "FLASK_APP": "superset.app:create_app()",
            "NBP_SUPERSET_URL": f"http://127.0.0.1:{port}",
            "NBP_SUPERSET_DATABASE_URI": databases.metadata.render_as_string(hide_password=False),
            "NBP_SUPERSET_SECRET_KEY": secret_key,
            "NBP_OIDC_ISSUER": login.issuer,
            "NBP_SUPERSET_CLIENT_SECRET": login.client_secret,
            "NBP_HISTORY_DATABASE_URI": databases.history.render_as_string(hide_password=False),
        }
    )
    return env


def run_superset(layout: Layout, env: Mapping[str, str], *args: str) -> None:
    say("superset " + " ".join(args))
    done = subprocess.run([str(layout.bin("superset")), *args], env=dict(env), check=False)
    if done.returncode != 0:
        raise Failure(f"`superset {' '.join(args)}` failed (exit {done.returncode}); see its output above")


def import_dashboards(layout: Layout, env: Mapping[str, str], *extra: str) -> None:
    """superset-auth/import_dashboards.py in Superset's environment: every dashboard, chart and dataset."""
    say("importing the dashboards (superset-auth/dashboards.py)")
    done = subprocess.run(
        [str(layout.bin("python")), str(layout.auth_dir / "import_dashboards.py"), *extra],
        env=dict(env),
        check=False,
    )
    if done.returncode != 0:
        raise Failure(f"importing the dashboards failed (exit {done.returncode}); see its output above")


def initialise(layout: Layout, env: Mapping[str, str], state: Path) -> None:
    """``superset db upgrade`` and ``superset init`` when the install or the metadata database changed
    since the last time (they take half a minute), then the dashboards (every time)."""
    stamp = state / "initialised"
    digest = hashlib.sha256(
        (lock_digest(layout) + env["NBP_SUPERSET_DATABASE_URI"] + database_oid(env)).encode()
    ).hexdigest()
    if not stamp.exists() or stamp.read_text().strip() != digest:
        run_superset(layout, env, "db", "upgrade")
        run_superset(layout, env, "init")
        stamp.write_text(digest + "\n")
    import_dashboards(layout, env)


def database_oid(env: Mapping[str, str]) -> str:
    """The metadata database's identity: a database dropped and made again is initialised again."""
    url = make_url(env["NBP_SUPERSET_DATABASE_URI"])

    async def fetch() -> str:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            return str(await conn.fetchval("SELECT oid FROM pg_database WHERE datname = current_database()"))
        finally:
            await conn.close()

    return asyncio.run(fetch())


def serve_command(layout: Layout, port: int, host: str = "127.0.0.1") -> list[str]:
    """gunicorn with one worker and threads: enough for a team, about 300 MB."""
    return [
        str(layout.bin("gunicorn")),
        "--bind",
        f"{host}:{port}",
        "--workers",
        "1",
        "--worker-class",
        "gthread",
        "--threads",
        "8",
        "--timeout",
        "120",
        "--graceful-timeout",
        "10",
        "--limit-request-line",
        "0",
        "--limit-request-field_size",
        "0",
        "superset.app:create_app()",
    ]


# --- the command -------------------------------------------------------------------------------------


def platform_server(layout: Layout) -> tuple[URL, str, Callable[[], None]]:
    """The PostgreSQL server (its maintenance database), the platform's database on it, and how to let
    go of the server."""
    external = os.environ.get("NBP_DATABASE_URL")
    if external:
        url = make_url(external)
        return url.set(database="postgres"), url.database or PLATFORM_DATABASE, nothing_to_release
    import pgserver

    data = layout.state_root / "postgres"
    data.mkdir(parents=True, exist_ok=True)
    say(f"using the embedded PostgreSQL in {data}")
    # "stop": the data stays; the server stops when its last user (this process, nbp-dev) is gone.
    server = pgserver.get_server(data.resolve(), cleanup_mode="stop")
    if "(1 row)" not in server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{PLATFORM_DATABASE}';"):
        server.psql(f'CREATE DATABASE "{PLATFORM_DATABASE}";')
    return make_url(server.get_uri()).set(database="postgres"), PLATFORM_DATABASE, server._cleanup


def prepared_environment(layout: Layout, port: int) -> tuple[dict[str, str], Callable[[], None]]:
    ensure_installed(layout)
    values = stored_secrets(layout.state)
    server, platform_database, release = platform_server(layout)
    try:
        databases = prepare_databases(server, values, platform_database=platform_database)
        env = superset_environment(
            layout,
            databases,
            local_keycloak_login(layout),
            values["NBP_SUPERSET_SECRET_KEY"],
            port,
            layout.state / "home",
        )
        initialise(layout, env, layout.state)
    except BaseException:
        release()
        raise
    return env, release


def nothing_to_release() -> None:
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="nbp-superset", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["install", "prepare", "serve"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("NBP_SUPERSET_PORT", DEFAULT_PORT)))
    args = parser.parse_args(argv)
    layout = Layout.of_checkout()
    release = nothing_to_release
    try:
        if args.command == "install":
            ensure_installed(layout)
            return 0
        env, release = prepared_environment(layout, args.port)
        if args.command == "prepare":
            return 0
        say(f"serving on http://127.0.0.1:{args.port} (sign in through {env['NBP_OIDC_ISSUER']})")
        # Superset runs as a child, so that the embedded PostgreSQL is let go of when it stops; a
        # SIGTERM or SIGINT (a supervisor, Ctrl-C) stops gunicorn gracefully first.
        with subprocess.Popen(serve_command(layout, args.port), env=env) as server:

            def stop(_signum: int, _frame: object) -> None:
                server.send_signal(signal.SIGTERM)

            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
            return server.wait()
    except Failure as failure:
        say(f"error: {failure}")
        return 2
    finally:
        release()


if __name__ == "__main__":
    sys.exit(main())
