"""Local verification of Keycloak access tokens: signature against the realm's JWKS, then the claims.

Nothing is sent to Keycloak per request. The realm's public keys are fetched once and kept in memory;
a token signed with a key id the cache does not know makes it fetch the key set again (key rotation),
at most once per ``oidc_jwks_min_refresh_seconds``, one fetch at a time however many requests wait.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx
import jwt

from nbp_common.auth.principal import Principal
from nbp_common.auth.settings import AuthSettings

if TYPE_CHECKING:
    from jwt.types import Options

logger = logging.getLogger("nbp.auth")

# A bearer token is three base64url segments; anything else is refused before it is parsed.
_JWS_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
MAX_TOKEN_LENGTH = 16 * 1024


class AuthenticationError(Exception):
    """The token is not acceptable. ``reason`` is for logs only; callers answer a plain 401."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeysUnavailableError(AuthenticationError):
    """No realm key could be fetched and none is cached: the token cannot be judged (503, not 401)."""


class JwksCache:
    """The realm's signing keys by key id, fetched on first use, on an unknown key id and when old."""

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        algorithms: frozenset[str],
        min_refresh_seconds: float,
        max_age_seconds: float,
        timeout_seconds: float,
    ) -> None:
        self.url = url
        self._client = client
        self._algorithms = algorithms
        self._min_refresh = min_refresh_seconds
        self._max_age = max_age_seconds
        self._timeout = timeout_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0
        """How many times the key set was requested (for tests and metrics)."""
        self.generation = 0
        """Incremented whenever the set of keys changes (what was verified before may no longer be)."""

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    @property
    def loaded(self) -> bool:
        return bool(self._keys)

    @property
    def fresh(self) -> bool:
        return self._loaded_at is not None and time.monotonic() - self._loaded_at < self._max_age

    async def get(self, kid: str) -> jwt.PyJWK | None:
        if kid not in self._keys or not self.fresh:
            await self.refresh()
        return self._keys.get(kid)

    def _may_fetch(self, now: float) -> bool:
        if self._attempted_at is None:
            return True
        # Without any key the service can verify nothing: try again sooner (still one at a time).
        interval = self._min_refresh if self._keys else min(self._min_refresh, 1.0)
        return now - self._attempted_at >= interval

    async def refresh(self) -> None:
        """Fetch the key set unless it was fetched (or tried) too recently; concurrent callers share one."""
        async with self._lock:
            now = time.monotonic()
            if not self._may_fetch(now):
                return
            self._attempted_at = now
            self.fetches += 1
            try:
                response = await self._client.get(
                    self.url, timeout=self._timeout, headers={"Accept": "application/json"}
                )
                response.raise_for_status()
                document = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                # Keep serving the keys we have: a Keycloak restart must not lock everybody out.
                logger.warning("could not fetch the realm's keys from %s: %s", self.url, exc)
                return
            keys = self._parse(document)
            if not keys:
                logger.warning(
                    "the key set at %s holds no usable signing key; keeping the previous one", self.url
                )
                return
            added = keys.keys() - self._keys.keys()
            removed = self._keys.keys() - keys.keys()
            if added or removed:
                logger.info(
                    "realm keys: %d (added %s, removed %s)", len(keys), sorted(added), sorted(removed)
                )
                self.generation += 1
            self._keys = keys
            self._loaded_at = now

    def _parse(self, document: Any) -> dict[str, jwt.PyJWK]:
        keys: dict[str, jwt.PyJWK] = {}
        entries = document.get("keys") if isinstance(document, Mapping) else None
        if not isinstance(entries, list):
            return keys
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            kid = entry.get("kid")
            # Encryption keys ("use": "enc", e.g. Keycloak's RSA-OAEP key) never verify a signature.
            if not isinstance(kid, str) or entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(dict(entry))
            except jwt.PyJWTError as exc:
                logger.debug("skipping key %s: %s", kid, exc)
                continue
            if key.algorithm_name in self._algorithms:
                keys[kid] = key
        return keys


class TokenVerifier:
    """Checks Keycloak access tokens against the realm's keys and claims; see :meth:`verify`."""

    def __init__(self, settings: AuthSettings, *, http_client: httpx.AsyncClient | None = None) -> None:
        if not settings.oidc_issuer:
            raise ValueError("a TokenVerifier needs NBP_OIDC_ISSUER")
        self.settings = settings
        self._issuer = settings.oidc_issuer
        self._audience = settings.oidc_audience
        self._algorithms = frozenset(settings.oidc_algorithms)
        self._leeway = settings.oidc_leeway_seconds
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient(timeout=settings.oidc_http_timeout_seconds)
        self.jwks = JwksCache(
            settings.jwks_url,
            self._client,
            algorithms=self._algorithms,
            min_refresh_seconds=settings.oidc_jwks_min_refresh_seconds,
            max_age_seconds=settings.oidc_jwks_max_age_seconds,
            timeout_seconds=settings.oidc_http_timeout_seconds,
        )
        self._verified: OrderedDict[bytes, tuple[Principal, float, int]] = OrderedDict()
        self._verified_max = settings.oidc_verified_cache_size
        self._options: Options = {
            "verify_signature": True,
            "verify_exp": True,
            "verify_nbf": True,
            "verify_iat": True,
            "verify_iss": True,
            "verify_aud": True,
            "require": ["exp", "iat", "iss", "aud"],
        }

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def verify(self, token: str) -> Principal:
        """The principal of a valid access token; :class:`AuthenticationError` for anything else.

        In order: the token's shape; the algorithm in the header against the allow-list (``none`` and
        HS* never reach a key lookup); the key by ``kid`` (fetching the key set again, rate-limited,
        when unknown); the signature with that key and only that key's algorithm; ``exp``/``nbf``/``iat``
        with the leeway, ``iss``, ``aud`` containing our audience; ``typ`` Bearer (an ID token says
        ``ID``, a refresh token ``Refresh``); a ``preferred_username``.

        A token that passed is remembered (by its SHA-256) until it expires, the key set changes or gets
        old: the same token again costs a lookup. Refusals are not remembered.
        """
        if len(token) > MAX_TOKEN_LENGTH or not _JWS_COMPACT.fullmatch(token):
            raise AuthenticationError("not a compact JWS")
        digest = hashlib.sha256(token.encode()).digest()
        remembered = self._verified.get(digest)
        if remembered is not None:
            principal, valid_until, generation = remembered
            if time.time() < valid_until and generation == self.jwks.generation and self.jwks.fresh:
                self._verified.move_to_end(digest)
                return principal
            del self._verified[digest]
        principal, valid_until = await self._verify(token)
        if self._verified_max:
            self._verified[digest] = (principal, valid_until, self.jwks.generation)
            while len(self._verified) > self._verified_max:
                self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        header = _unverified_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise AuthenticationError(f"algorithm {alg!r} not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationError("no key id")
        key = await self.jwks.get(kid)
        if key is None:
            if not self.jwks.loaded:
                raise KeysUnavailableError(f"no keys from {self.jwks.url}")
            raise AuthenticationError(f"unknown key id {kid!r}")
        if key.algorithm_name != alg:
            raise AuthenticationError(f"key {kid!r} is for {key.algorithm_name}, token says {alg}")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options=self._options,
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"{type(exc).__name__}: {exc}") from None
        # Accepted until exp (+ leeway): the same moment the checks above would start refusing it.
        return principal_from_claims(claims), float(claims["exp"]) + self._leeway


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, read only to choose the key (the signature covers it; PyJWT checks it again)."""
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error):
        raise AuthenticationError("unreadable header") from None
    if not isinstance(header, dict):
        raise AuthenticationError("header is not a JSON object")
    return header


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """The principal of an access token whose signature and standard claims were checked."""
    typ = claims.get("typ")
    if not isinstance(typ, str) or typ.lower() != "bearer":
        raise AuthenticationError(f"token type {typ!r} is not an access token")
    username = claims.get("preferred_username")
    if not isinstance(username, str) or not username:
        raise AuthenticationError("no preferred_username")
    realm_access = claims.get("realm_access")
    roles = realm_access.get("roles") if isinstance(realm_access, Mapping) else None
    groups = claims.get("groups")
    subject = claims.get("sub")
    client_id = claims.get("azp")
    return Principal(
        username=username,
        roles=_strings(roles),
        groups=_strings(groups),
        subject=subject if isinstance(subject, str) else None,
        client_id=client_id if isinstance(client_id, str) else None,
        authenticated=True,
    )


def _strings(value: object) -> frozenset[str]:
    if not isinstance(value, list):
        return frozenset()
    return frozenset(item for item in value if isinstance(item, str))
