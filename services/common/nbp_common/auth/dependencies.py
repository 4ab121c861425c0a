"""FastAPI wiring: the caller's :class:`Principal` as a dependency, 401/403 answers per RFC 6750.

In a service::

    app = FastAPI()
    install_auth(app, AuthSettings())          # once, at app creation

    @router.get("/db/notebooks")
    async def list_notebooks(principal: CurrentPrincipal) -> ...: ...

    @router.post("/db/notebooks")
    async def create(principal: Principal = Depends(require_principal("write"))) -> ...: ...

Without :func:`install_auth` the dependency uses one process-wide authenticator built from the
environment (``AuthSettings()``).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nbp_common.auth.principal import DEV_PRINCIPAL, Principal
from nbp_common.auth.settings import AuthSettings
from nbp_common.auth.verifier import AuthenticationError, KeysUnavailableError, TokenVerifier

logger = logging.getLogger("nbp.auth")

REALM_LABEL = "notebook-platform"

# Declares the scheme in OpenAPI (the docs' "Authorize" button); the header itself is parsed below, so
# that a missing header and a malformed one get different answers.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="keycloak",
    bearerFormat="JWT",
    description="An access token of the notebook-platform realm (audience nbp-api).",
)

Permission = Literal["authenticated", "read", "write", "admin"]


def _challenge(error: str | None) -> dict[str, str]:
    value = f'Bearer realm="{REALM_LABEL}"'
    if error:
        value += f', error="{error}"'
    return {"WWW-Authenticate": value}


def unauthorized(error: str | None = "invalid_token") -> HTTPException:
    """401 with a Bearer challenge. The detail never says what was wrong with a token."""
    if error is None:
        detail = "sign in first: this endpoint needs an access token (Authorization: Bearer <token>)"
    else:
        detail = "the access token is not valid; sign in again"
    return HTTPException(status_code=401, detail=detail, headers=_challenge(error))


class Authenticator:
    """Turns an ``Authorization`` header into a :class:`Principal`, per the settings' mode."""

    def __init__(self, settings: AuthSettings, verifier: TokenVerifier | None = None) -> None:
        self.settings = settings
        self.verifier: TokenVerifier | None = None
        if settings.auth == "keycloak":
            self.verifier = verifier or TokenVerifier(settings)

    async def aclose(self) -> None:
        if self.verifier is not None:
            await self.verifier.aclose()

    async def authenticate(self, authorization: str | None, *, local_address: str | None = None) -> Principal:
        if self.verifier is None:
            _refuse_remote_when_unchecked(local_address)
            return DEV_PRINCIPAL
        if not authorization:
            raise unauthorized(None)
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            logger.info("access token refused: malformed Authorization header")
            raise unauthorized()
        try:
            return await self.verifier.verify(token)
        except KeysUnavailableError as exc:
            logger.error("cannot verify access tokens: %s", exc.reason)
            raise HTTPException(
                status_code=503,
                detail="sign-in cannot be checked right now; try again shortly",
                headers={"Retry-After": "5"},
            ) from None
        except AuthenticationError as exc:
            logger.info("access token refused: %s", exc.reason)
            raise unauthorized() from None


def _refuse_remote_when_unchecked(local_address: str | None) -> None:
    """With NBP_AUTH=none, a request that reached a non-loopback address of this host is refused.

    A second guard behind :func:`assert_loopback_only` (which a process can skip, e.g. when started by
    ``uvicorn --host 0.0.0.0`` directly): the ASGI server reports the local address the connection came
    in on. In-process test transports report a host name, not an address, and pass.
    """
    if local_address is None or not _is_remote_address(local_address):
        return
    logger.error("NBP_AUTH=none: refused a request that arrived on %s, which is not loopback", local_address)
    raise HTTPException(
        status_code=401,
        detail="authentication is off on this server (NBP_AUTH=none); it answers on loopback only",
        headers=_challenge(None),
    )


# A server listens on a handful of addresses: each is parsed once, not on every request.
@functools.lru_cache(maxsize=64)
def _is_remote_address(local_address: str) -> bool:
    try:
        address = ipaddress.ip_address(local_address.strip("[]"))
    except ValueError:
        return False
    return not address.is_loopback


def install_auth(
    app: FastAPI, settings: AuthSettings | None = None, *, verifier: TokenVerifier | None = None
) -> Authenticator:
    """Give ``app`` its authenticator (call once when creating the app; close it on shutdown)."""
    settings = settings or AuthSettings()
    authenticator = Authenticator(settings, verifier)
    app.state.nbp_authenticator = authenticator
    log_auth_mode(settings)
    return authenticator


def log_auth_mode(settings: AuthSettings) -> None:
    if settings.auth == "none":
        logger.warning(
            "*** NBP_AUTH=none: AUTHENTICATION IS OFF. Nothing is checked; every caller is the "
            "development user 'dev' with every role. Local development on loopback only. ***"
        )
    else:
        logger.info(
            "access tokens verified locally: issuer %s, audience %s, keys from %s",
            settings.oidc_issuer,
            settings.oidc_audience,
            settings.jwks_url,
        )


@functools.cache
def default_authenticator() -> Authenticator:
    """The process-wide authenticator from the environment, for apps without :func:`install_auth`."""
    settings = AuthSettings()
    log_auth_mode(settings)
    return Authenticator(settings)


async def get_authenticator(request: Request) -> Authenticator:
    # async: FastAPI would run a plain function in a worker thread, on every request.
    found = getattr(request.app.state, "nbp_authenticator", None)
    if isinstance(found, Authenticator):
        return found
    return default_authenticator()


async def _authenticate(request: Request) -> Principal:
    # The authenticator is looked up, not injected: a dependency fewer on every request.
    authenticator = await get_authenticator(request)
    server = request.scope.get("server")
    local_address = server[0] if server else None
    return await authenticator.authenticate(request.headers.get("Authorization"), local_address=local_address)


async def current_principal(
    request: Request, _declared: HTTPAuthorizationCredentials | None = Security(bearer_scheme)
) -> Principal:
    """The caller: 401 (with ``WWW-Authenticate``) without a valid access token."""
    return await _authenticate(request)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]

_FORBIDDEN = {
    "read": "this needs one of the roles nbp-viewer, nbp-user or nbp-admin",
    "write": "viewers can read but not change anything: this needs the role nbp-user or nbp-admin",
    "admin": "this needs the role nbp-admin",
}


def require_principal(permission: Permission = "read") -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, if allowed ``permission`` (401 without a valid token, 403 without the role).

    ``authenticated``: any valid token; ``read``: any platform role; ``write``: nbp-user or nbp-admin;
    ``admin``: nbp-admin (or a service's own client). Ownership ("only their own notebooks") is the
    endpoint's rule: :meth:`Principal.may_read` / :meth:`Principal.may_write`.
    """

    # One dependency that authenticates and checks the role, rather than one on top of
    # current_principal: FastAPI solves each dependency level on every request.
    async def dependency(
        request: Request, _declared: HTTPAuthorizationCredentials | None = Security(bearer_scheme)
    ) -> Principal:
        principal = await _authenticate(request)
        allowed = {
            "authenticated": True,
            "read": principal.can_read,
            "write": principal.can_write,
            "admin": principal.is_admin,
        }[permission]
        if not allowed:
            raise HTTPException(status_code=403, detail=_FORBIDDEN[permission])
        return principal

    dependency.__name__ = f"require_{permission}_principal"
    return dependency
