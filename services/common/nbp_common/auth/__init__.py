"""Identity for the services: Keycloak access tokens verified locally, and the caller as a Principal.

- :class:`AuthSettings` (``NBP_AUTH``, ``NBP_OIDC_*``, ``NBP_SERVICE_CLIENT_*``)
- :class:`TokenVerifier` (``await verify(token) -> Principal``, :class:`AuthenticationError` otherwise)
- FastAPI: :func:`install_auth`, :func:`current_principal` / :data:`CurrentPrincipal`,
  :func:`require_principal` ("read", "write", "admin")
- :func:`assert_loopback_only`: NBP_AUTH=none only on loopback
- :class:`ServiceTokenProvider`: the service's own client-credentials token, as an ``httpx.Auth``

See keycloak-realm/README.md for the realm these tokens come from.
"""

from nbp_common.auth.dependencies import (
    Authenticator,
    CurrentPrincipal,
    bearer_scheme,
    current_principal,
    get_authenticator,
    install_auth,
    log_auth_mode,
    require_principal,
    unauthorized,
)
from nbp_common.auth.loopback import InsecureBindError, assert_loopback_only, is_loopback_host
from nbp_common.auth.principal import (
    ADMIN_ROLE,
    DEV_PRINCIPAL,
    PLATFORM_ROLES,
    SERVICE_ROLE,
    USER_ROLE,
    VIEWER_ROLE,
    Principal,
)
from nbp_common.auth.service_token import ServiceTokenError, ServiceTokenProvider
from nbp_common.auth.settings import AuthSettings
from nbp_common.auth.verifier import AuthenticationError, JwksCache, KeysUnavailableError, TokenVerifier

__all__ = [
    "ADMIN_ROLE",
    "DEV_PRINCIPAL",
    "PLATFORM_ROLES",
    "SERVICE_ROLE",
    "USER_ROLE",
    "VIEWER_ROLE",
    "AuthSettings",
    "AuthenticationError",
    "Authenticator",
    "CurrentPrincipal",
    "InsecureBindError",
    "JwksCache",
    "KeysUnavailableError",
    "Principal",
    "ServiceTokenError",
    "ServiceTokenProvider",
    "TokenVerifier",
    "assert_loopback_only",
    "bearer_scheme",
    "current_principal",
    "get_authenticator",
    "install_auth",
    "is_loopback_host",
    "log_auth_mode",
    "require_principal",
    "unauthorized",
]
