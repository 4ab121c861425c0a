"""Test support: the local Keycloak of ``scripts/keycloak.py`` and tokens from its realm.

A test module or conftest imports the fixture::

    from tests.support.keycloak import keycloak  # noqa: F401  (session fixture: LocalKeycloak)

The fixture starts Keycloak through the script (or reuses the one already running for this checkout),
and stops it at the end of the session if it started it (``NBP_KEYCLOAK_KEEP=1`` keeps it running for
the next session). A missing prerequisite (Java 21+, Maven, the download) fails the test with the
script's message saying how to install it; it never skips.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from nbp_common.auth.dependencies import CurrentPrincipal, install_auth, require_principal
from nbp_common.auth.principal import Principal
from nbp_common.auth.settings import AuthSettings
from nbp_common.auth.verifier import TokenVerifier
from nbp_platform import SERVICES
from sqlalchemy.engine import URL

from tests.support.common import free_port, served_app, settings_for

DEV_USERS = {
    # username: (group, realm role); see keycloak-realm/dev/realm-dev.json
    "alice": ("data-scientists", "nbp-user"),
    "bob": ("data-scientists", "nbp-user"),
    "carol": ("analysts", "nbp-viewer"),
    "dana": ("admins", "nbp-admin"),
    "erin": (None, None),
}
TEST_CLIENT = "nbp-test"  # password grant, tokens for nbp-api
SHORTLIVED_CLIENT = "nbp-test-shortlived"  # the same with 2-second access tokens
NOAUD_CLIENT = "nbp-test-noaud"  # the same without nbp-api in aud


class KeycloakUnavailable(RuntimeError):
    """The local Keycloak could not be started; the message says why and what to install."""


def repo_root() -> Path:
    configured = os.environ.get("NBP_REPO_ROOT")
    if configured:
        return Path(configured)
    # tests/support/keycloak.py -> the repository
    return Path(__file__).resolve().parents[2]


def keycloak_script() -> Path:
    script = repo_root() / "scripts" / "keycloak.py"
    if not script.exists():
        raise KeycloakUnavailable(f"{script} not found; set NBP_REPO_ROOT to the repository")
    return script


def _run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(keycloak_script()), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class LocalKeycloak:
    """The running local Keycloak and what the tests need to talk to it."""

    url: str
    realm: str
    issuer: str
    admin_username: str
    admin_password: str
    service_client_id: str
    service_client_secret: str
    user_password: str

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    def auth_settings(self, **overrides: Any) -> AuthSettings:
        """Settings that verify this realm's tokens (overrides: any AuthSettings field)."""
        values: dict[str, Any] = {
            "auth": "keycloak",
            "oidc_issuer": self.issuer,
            "oidc_jwks_url": self.jwks_url,
            "oidc_audience": "nbp-api",
            "oidc_token_url": self.token_url,
            "service_client_id": self.service_client_id,
            "service_client_secret": self.service_client_secret,
        }
        values.update(overrides)
        return AuthSettings(**values)

    async def token_response(
        self,
        username: str,
        *,
        client_id: str = TEST_CLIENT,
        scope: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The token endpoint's answer to a password grant (test clients of the dev realm only)."""
        form = {"grant_type": "password", "client_id": client_id, "username": username}
        form["password"] = self.user_password
        if scope:
            form["scope"] = scope
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(self.token_url, data=form, headers=headers)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    async def access_token(self, username: str, *, client_id: str = TEST_CLIENT) -> str:
        return str((await self.token_response(username, client_id=client_id))["access_token"])

    async def service_token(self) -> str:
        """The executor's client-credentials access token."""
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                self.token_url,
                data={"grant_type": "client_credentials"},
                auth=(self.service_client_id, self.service_client_secret),
            )
        response.raise_for_status()
        return str(response.json()["access_token"])

    async def master_admin_token(self) -> str:
        """An access token of the master realm's admin (a token from another issuer, and the admin API's)."""
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                f"{self.url}/realms/master/protocol/openid-connect/token",
                data={
                    "grant_type": "password",
                    "client_id": "admin-cli",
                    "username": self.admin_username,
                    "password": self.admin_password,
                },
            )
        response.raise_for_status()
        return str(response.json()["access_token"])

    @asynccontextmanager
    async def admin_api(self) -> AsyncIterator[httpx.AsyncClient]:
        """An HTTP client on the realm's admin REST API (``/admin/realms/<realm>``), signed in as admin."""
        token = await self.master_admin_token()
        async with httpx.AsyncClient(
            base_url=f"{self.url}/admin/realms/{self.realm}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ) as client:
            yield client


def start_local_keycloak() -> tuple[LocalKeycloak, bool]:
    """Start (or reuse) this checkout's Keycloak; whether this call started it."""
    already = _run("status", timeout=60).returncode == 0
    if not already:
        started = _run("start")
        if started.returncode != 0:
            raise KeycloakUnavailable(
                "the local Keycloak could not be started (python3 scripts/keycloak.py start):\n"
                + (started.stderr.strip() or started.stdout.strip())
            )
    env = _run("env", "--json", timeout=60)
    if env.returncode != 0:
        raise KeycloakUnavailable(f"scripts/keycloak.py env failed:\n{env.stderr}")
    values = json.loads(env.stdout)
    return (
        LocalKeycloak(
            url=values["NBP_KEYCLOAK_URL"],
            realm=values["NBP_KEYCLOAK_REALM"],
            issuer=values["NBP_OIDC_ISSUER"],
            admin_username=values["NBP_KEYCLOAK_ADMIN_USERNAME"],
            admin_password=values["NBP_KEYCLOAK_ADMIN_PASSWORD"],
            service_client_id=values["NBP_SERVICE_CLIENT_ID"],
            service_client_secret=values["NBP_SERVICE_CLIENT_SECRET"],
            user_password=values["NBP_DEV_USER_PASSWORD"],
        ),
        not already,
    )


def stop_local_keycloak() -> None:
    _run("stop", timeout=120)


@pytest.fixture(scope="session")
def keycloak() -> Iterator[LocalKeycloak]:
    """The local Keycloak with the realm and its development additions (one per test session)."""
    try:
        instance, started = start_local_keycloak()
    except (KeycloakUnavailable, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"Keycloak is needed for this test and is not available: {exc}", pytrace=False)
    yield instance
    if started and os.environ.get("NBP_KEYCLOAK_KEEP") != "1":
        stop_local_keycloak()


# --- a tiny app guarded by the library, for tests of the dependencies -------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def principal_json(principal: Principal) -> dict[str, Any]:
    return {
        "username": principal.username,
        "roles": sorted(principal.roles),
        "groups": sorted(principal.groups),
        "is_admin": principal.is_admin,
        "is_service": principal.is_service,
        "can_write": principal.can_write,
        "can_read": principal.can_read,
        "authenticated": principal.authenticated,
        "client_id": principal.client_id,
    }


def guarded_app(settings: AuthSettings, verifier: TokenVerifier | None = None) -> FastAPI:
    """An app with one endpoint per permission, each answering with the caller it saw."""
    app = FastAPI()
    install_auth(app, settings, verifier=verifier)

    @app.get("/whoami")
    async def whoami(principal: CurrentPrincipal) -> dict[str, Any]:
        return principal_json(principal)

    @app.get("/read")
    async def read(principal: Principal = Depends(require_principal("read"))) -> dict[str, Any]:
        return principal_json(principal)

    @app.post("/write")
    async def write(principal: Principal = Depends(require_principal("write"))) -> dict[str, Any]:
        return principal_json(principal)

    @app.delete("/admin")
    async def admin(principal: Principal = Depends(require_principal("admin"))) -> dict[str, Any]:
        return principal_json(principal)

    return app


@asynccontextmanager
async def guarded_client(
    settings: AuthSettings, verifier: TokenVerifier | None = None, base_url: str = "http://nbp.test"
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of :func:`guarded_app`."""
    app = guarded_app(settings, verifier)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client
    finally:
        await app.state.nbp_authenticator.aclose()


KEY_PROVIDER = "org.keycloak.keys.KeyProvider"


@asynccontextmanager
async def key_provider(admin: httpx.AsyncClient, **config: str) -> AsyncIterator[str]:
    """A key provider component added to the realm for the test, removed afterwards."""
    realm_id = (await admin.get("")).json()["id"]
    created = await admin.post(
        "/components",
        json={
            "name": config.pop("name"),
            "providerId": config.pop("providerId"),
            "providerType": KEY_PROVIDER,
            "parentId": realm_id,
            "config": {key.replace("_", "."): [value] for key, value in config.items()},
        },
    )
    if created.status_code != 201:
        raise RuntimeError(f"Keycloak refused the key provider: {created.status_code} {created.text}")
    component_id = created.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    try:
        yield component_id
    finally:
        await admin.delete(f"/components/{component_id}")


@asynccontextmanager
async def secured_platform(
    keycloak: LocalKeycloak, database_url: URL, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """The whole platform verifying Keycloak's tokens (``NBP_AUTH=keycloak``, one worker) on a real
    loopback port; its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    for key, value in {
        "NBP_WORKSPACE": str(workspace),
        "NBP_REGISTRY_URL": base,
        "NBP_HISTORY_URL": base,
        "NBP_EXECUTOR_WORKERS": "1",
        "NBP_AUTH": "keycloak",
        "NBP_OIDC_ISSUER": keycloak.issuer,
        "NBP_OIDC_JWKS_URL": keycloak.jwks_url,
        "NBP_OIDC_TOKEN_URL": keycloak.token_url,
        "NBP_SERVICE_CLIENT_ID": keycloak.service_client_id,
        "NBP_SERVICE_CLIENT_SECRET": keycloak.service_client_secret,
    }.items():
        monkeypatch.setenv(key, value)
    async with served_app(SERVICES, settings_for(database_url), port) as url:
        yield url
