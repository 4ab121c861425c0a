"""Where the SDK finds its server and token, and the CLI's token cache.

The server: the argument, ``NBP_URL``, the server ``nbp login`` last signed in to, or the local
``make dev`` address. The token: the argument, ``NBP_TOKEN``, the CLI's cache for that server (refreshed
when it has expired), or, inside a JupyterHub single-user server, the hub's (the user's Keycloak token
that the hub keeps in its auth state). No token is fine against a server without sign-in (``make dev``).

The cache is ``credentials.json`` in the user's config folder (``NBP_CONFIG_DIR``, else the platform's
own: ``~/.config/nbp`` on Linux), mode 0600 in a 0700 folder, one entry per server.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import platformdirs

from nbp.client.errors import SignInError

DEFAULT_SERVER = "http://127.0.0.1:8002"
# Refresh this long before the access token expires, so that it does not expire on the way.
EXPIRY_MARGIN_SECONDS = 20.0


def config_dir() -> Path:
    configured = os.environ.get("NBP_CONFIG_DIR")
    return Path(configured) if configured else Path(platformdirs.user_config_dir("nbp"))


def normalise_server(url: str) -> str:
    return url.rstrip("/")


@dataclass
class StoredLogin:
    """One server's sign-in: the tokens and where to refresh them."""

    server: str
    issuer: str
    client_id: str
    access_token: str
    refresh_token: str | None
    expires_at: float
    refresh_expires_at: float | None = None

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    def fresh(self, now: float | None = None) -> bool:
        return (now or time.time()) < self.expires_at - EXPIRY_MARGIN_SECONDS

    @classmethod
    def from_token_response(
        cls, server: str, issuer: str, client_id: str, body: dict[str, Any], now: float | None = None
    ) -> StoredLogin:
        now = now or time.time()
        refresh_in = body.get("refresh_expires_in")
        return cls(
            server=normalise_server(server),
            issuer=issuer,
            client_id=client_id,
            access_token=str(body["access_token"]),
            refresh_token=body.get("refresh_token"),
            expires_at=now + float(body.get("expires_in", 60)),
            # Keycloak says 0 for an offline token, which does not expire on its own.
            refresh_expires_at=now + float(refresh_in) if refresh_in else None,
        )


class CredentialStore:
    """The CLI's token cache; every write is atomic and leaves the file readable by its owner only."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or config_dir()
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self.folder / "credentials.json"

    def _read(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"current": None, "servers": {}}
        except (OSError, ValueError):
            # A damaged cache is as good as none: signing in again rewrites it.
            return {"current": None, "servers": {}}
        data.setdefault("servers", {})
        return data

    def _write(self, data: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)
        descriptor, temporary = tempfile.mkstemp(dir=self.folder, prefix=".credentials-")
        try:
            os.fchmod(descriptor, 0o600)
            with os.fdopen(descriptor, "w") as out:
                json.dump(data, out, indent=2)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def current_server(self) -> str | None:
        current = self._read().get("current")
        return str(current) if current else None

    def get(self, server: str) -> StoredLogin | None:
        entry = self._read()["servers"].get(normalise_server(server))
        return StoredLogin(**entry) if entry else None

    def put(self, login: StoredLogin) -> None:
        with self._lock:
            data = self._read()
            data["servers"][login.server] = asdict(login)
            data["current"] = login.server
            self._write(data)

    def remove(self, server: str) -> StoredLogin | None:
        with self._lock:
            data = self._read()
            entry = data["servers"].pop(normalise_server(server), None)
            if data.get("current") == normalise_server(server):
                data["current"] = next(iter(data["servers"]), None)
            self._write(data)
            return StoredLogin(**entry) if entry else None


def refresh(login: StoredLogin, timeout: float = 30.0) -> StoredLogin:
    """New tokens for ``login`` from its refresh token; :class:`SignInError` if that is no longer valid."""
    if not login.refresh_token:
        raise SignInError(
            f"the sign-in for {login.server} has expired: run `nbp login --server {login.server}`"
        )
    response = httpx.post(
        login.token_endpoint,
        data={
            "grant_type": "refresh_token",
            "refresh_token": login.refresh_token,
            "client_id": login.client_id,
        },
        timeout=timeout,
    )
    if response.status_code != 200:
        raise SignInError(
            f"the sign-in for {login.server} could not be renewed ({response.status_code}): "
            f"run `nbp login --server {login.server}`"
        )
    return StoredLogin.from_token_response(login.server, login.issuer, login.client_id, response.json())


def resolve_server(server: str | None = None, store: CredentialStore | None = None) -> str:
    chosen = server or os.environ.get("NBP_URL") or (store or CredentialStore()).current_server()
    return normalise_server(chosen or DEFAULT_SERVER)


class TokenSource:
    """The access token for one server, found as the module says; re-read (and refreshed) on every use,
    so a long-lived client keeps working past the 5-minute token life."""

    def __init__(self, server: str, token: str | None = None, store: CredentialStore | None = None) -> None:
        self.server = normalise_server(server)
        self.fixed = token or os.environ.get("NBP_TOKEN") or None
        self.store = store or CredentialStore()
        self._lock = threading.Lock()

    def token(self, force_refresh: bool = False) -> str | None:
        if self.fixed:
            return self.fixed
        with self._lock:
            login = self.store.get(self.server)
            if login is not None:
                if force_refresh or not login.fresh():
                    login = refresh(login)
                    self.store.put(login)
                return login.access_token
        return hub_token()

    @property
    def can_refresh(self) -> bool:
        return self.fixed is None and self.store.get(self.server) is not None


def hub_token(timeout: float = 10.0) -> str | None:
    """Inside a JupyterHub single-user server: the user's Keycloak access token, from the hub's API
    (``GET {JUPYTERHUB_API_URL}/users/{JUPYTERHUB_USER}`` with the server's own API token answers the
    user's auth state, which the platform's hub keeps and refreshes; ``/user`` would not fill it). None
    outside one, or when the hub does not share it."""
    api_url = os.environ.get("JUPYTERHUB_API_URL")
    api_token = os.environ.get("JUPYTERHUB_API_TOKEN")
    user = os.environ.get("JUPYTERHUB_USER")
    if not api_url or not api_token or not user:
        return None
    try:
        response = httpx.get(
            f"{api_url.rstrip('/')}/users/{user}",
            headers={"Authorization": f"token {api_token}"},
            timeout=timeout,
        )
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    state = response.json().get("auth_state") or {}
    token = state.get("access_token")
    return str(token) if token else None
