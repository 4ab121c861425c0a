"""A service's own access token (client credentials), for calling another service.

    tokens = ServiceTokenProvider.from_settings(AuthSettings())
    async with httpx.AsyncClient(base_url=registry_url, auth=tokens) as client:
        await client.get("/db/notebooks/7")          # Authorization: Bearer <the executor's token>

or ``headers = await tokens.headers()``. The token is fetched once and reused until shortly before it
expires; concurrent callers wait for one fetch. A 401 from the called service makes the ``httpx.Auth``
flow fetch a fresh token and retry once (the realm's keys may have changed, or the token was revoked).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass

import httpx

from nbp_common.auth.settings import AuthSettings

logger = logging.getLogger("nbp.auth")


class ServiceTokenError(RuntimeError):
    """Keycloak did not issue the service's token (wrong secret, unknown client, Keycloak down)."""


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    renew_at: float  # time.monotonic() after which a fresh token is fetched


class ServiceTokenProvider(httpx.Auth):
    """Client-credentials access tokens for one client, cached until shortly before they expire."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        renew_before_seconds: float = 30.0,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient(timeout=timeout_seconds)
        self._renew_before = renew_before_seconds
        self._token: _Token | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0
        """How many tokens were requested from Keycloak (for tests and metrics)."""

    @classmethod
    def from_settings(
        cls, settings: AuthSettings, *, http_client: httpx.AsyncClient | None = None
    ) -> ServiceTokenProvider:
        if not settings.service_client_id or settings.service_client_secret is None:
            raise ValueError(
                "NBP_SERVICE_CLIENT_ID and NBP_SERVICE_CLIENT_SECRET are needed for service calls"
            )
        return cls(
            settings.token_url,
            settings.service_client_id,
            settings.service_client_secret.get_secret_value(),
            http_client=http_client,
            timeout_seconds=settings.oidc_http_timeout_seconds,
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def invalidate(self, token: str | None = None) -> None:
        """Forget the cached token (only if it is still ``token``, when given)."""
        if token is None or (self._token is not None and self._token.value == token):
            self._token = None

    async def token(self) -> str:
        current = self._token
        if current is not None and time.monotonic() < current.renew_at:
            return current.value
        async with self._lock:
            current = self._token  # another caller may have fetched it while this one waited
            if current is not None and time.monotonic() < current.renew_at:
                return current.value
            self._token = await self._fetch()
            return self._token.value

    async def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token()}"}

    async def _fetch(self) -> _Token:
        self.fetches += 1
        started = time.monotonic()
        try:
            response = await self._client.post(
                self.token_url,
                data={"grant_type": "client_credentials"},
                auth=httpx.BasicAuth(self.client_id, self._secret),
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise ServiceTokenError(f"token endpoint {self.token_url} unreachable: {exc}") from exc
        if response.status_code != 200:
            # Keycloak's error code (e.g. unauthorized_client) is safe to log; the body holds no secret.
            raise ServiceTokenError(
                f"token endpoint answered {response.status_code} for client {self.client_id}: "
                f"{response.text[:200]}"
            )
        try:
            body = response.json()
            value = body["access_token"]
            lifetime = float(body.get("expires_in", 60))
        except (ValueError, KeyError, TypeError) as exc:
            raise ServiceTokenError(f"token endpoint answered an unreadable token: {exc}") from exc
        if not isinstance(value, str) or not value:
            raise ServiceTokenError("token endpoint answered without an access token")
        # Renew ahead of expiry so that a token never expires on its way to the other service; with a
        # lifetime shorter than the margin, at half the lifetime.
        ahead = self._renew_before if lifetime > self._renew_before else lifetime / 2
        return _Token(value=value, renew_at=started + lifetime - ahead)

    # httpx.Auth ---------------------------------------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("ServiceTokenProvider works with httpx.AsyncClient only")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            logger.info(
                "%s answered 401 to the service token of %s; fetching a new one", request.url, self.client_id
            )
            self.invalidate(token)
            request.headers["Authorization"] = f"Bearer {await self.token()}"
            yield request
