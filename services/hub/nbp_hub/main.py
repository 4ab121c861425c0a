"""``nbp-hub``: the local JupyterHub of ``make dev``, on 127.0.0.1 only.

The sign-in is :mod:`nbp_hub.keycloak_login` (the same settings as the chart's), the spawner
:class:`nbp_hub.spawner.SandboxSpawner`, the hub's tables in PostgreSQL, the proxy the Makefile installs.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from jupyterhub.app import JupyterHub
from pydantic import ValidationError
from traitlets.config import Config

from nbp_hub import keycloak_login
from nbp_hub.settings import HubSettings
from nbp_hub.spawner import SandboxSpawner


def private_file(path: Path, size: int) -> bytes:
    """``size`` random bytes kept in ``path`` (mode 600), made on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(size))
    return path.read_bytes()


def hub_config(settings: HubSettings) -> Config:
    c = Config()
    state = settings.hub_state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    c.JupyterHub.ip = "127.0.0.1"
    c.JupyterHub.port = settings.hub_port
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = settings.hub_api_port
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.hub_proxy_api_port}"
    c.ConfigurableHTTPProxy.command = [str(settings.chp_path.resolve())]
    c.JupyterHub.db_url = settings.hub_database_url
    c.JupyterHub.cookie_secret = private_file(state / "cookie_secret", 32)
    c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
    # The proxy's pid file would otherwise land in the current folder (the checkout, for make dev).
    c.ConfigurableHTTPProxy.pid_file = str(state / "jupyterhub-proxy.pid")
    c.JupyterHub.cleanup_servers = True  # a stopped hub stops every server it started
    keycloak_login.configure(
        c,
        issuer_public=settings.oidc_issuer,
        issuer_internal=settings.oidc_issuer,
        hub_public_url=settings.public_url,
        client_secret_value=settings.jupyterhub_client_secret.get_secret_value(),
        crypt_key=private_file(state / "auth_state_key", 32),
    )
    c.JupyterHub.spawner_class = SandboxSpawner
    c.SandboxSpawner.workspace = str(settings.workspace.resolve())
    c.Spawner.default_url = "/lab"
    # Where the nbp client inside each server finds the API (the one NBP_* variable the sandbox passes).
    c.Spawner.environment = {"NBP_URL": settings.api_url}
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 120
    return c


def main(argv: list[str] | None = None) -> None:
    try:
        settings = HubSettings()
    except ValidationError as error:
        missing = ", ".join("NBP_" + str(e["loc"][0]).upper() for e in error.errors())
        print(f"nbp-hub: set {missing} (make dev does)", file=sys.stderr)
        raise SystemExit(2) from None
    if not settings.chp_path.exists():
        print(f"nbp-hub: {settings.chp_path} is missing: run `make hub-proxy`", file=sys.stderr)
        raise SystemExit(2)
    JupyterHub.instance(config=hub_config(settings))  # the singleton launch_instance runs
    JupyterHub.launch_instance(sys.argv[1:] if argv is None else argv)
