"""Superset's configuration for the platform (SUPERSET_CONFIG_PATH points here), locally and in the chart.

Everything that differs between places comes from the environment (read as nbp_settings.py says: a
secret may come from the file ``<NAME>_FILE``, a database URL's password from ``<NAME>_PASSWORD``):

    NBP_SUPERSET_DATABASE_URI   Superset's own metadata database (never a platform schema)
    NBP_SUPERSET_SECRET_KEY     signs sessions and encrypts stored connection passwords
    NBP_SUPERSET_URL            where browsers reach Superset (post-logout redirect, cookie security)
    NBP_OIDC_ISSUER             the realm's issuer as browsers and tokens see it
    NBP_OIDC_INTERNAL_URL       the realm at an in-cluster address for server-to-server calls (optional)
    NBP_SUPERSET_CLIENT_ID      the realm's client (``superset``)
    NBP_SUPERSET_CLIENT_SECRET  its secret

The login is Flask-AppBuilder's own ``keycloak`` provider (Authlib underneath) with PKCE S256; neither
FAB's signed ``state`` nor Authlib's session-bound ``state`` check is overridden. Roles come from the
realm's groups at every login. The only subclass is the OAuth view's logout, which also ends the Keycloak
session.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask, redirect, request, session
from flask_appbuilder import expose
from flask_appbuilder.security.manager import AUTH_OAUTH
from flask_appbuilder.security.views import AuthOAuthView
from flask_login import logout_user
from werkzeug.wrappers import Response

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nbp_settings import database_url, setting
from nbp_superset_roles import GROUP_ROLES, NO_ACCESS_ROLE
from superset.security import SupersetSecurityManager

SUPERSET_URL = setting("NBP_SUPERSET_URL").rstrip("/")
OIDC_ISSUER = setting("NBP_OIDC_ISSUER").rstrip("/")
OIDC_INTERNAL = setting("NBP_OIDC_INTERNAL_URL", OIDC_ISSUER).rstrip("/")
SECURE = SUPERSET_URL.startswith("https://")

SQLALCHEMY_DATABASE_URI = database_url("NBP_SUPERSET_DATABASE_URI")
SECRET_KEY = setting("NBP_SUPERSET_SECRET_KEY")

# Behind the ingress: scheme, host and client address from its X-Forwarded-* headers (one proxy).
ENABLE_PROXY_FIX = True
PROXY_FIX_CONFIG = {"x_for": 1, "x_proto": 1, "x_host": 1, "x_port": 1, "x_prefix": 1}
PREFERRED_URL_SCHEME = "https" if SECURE else "http"

# A cookie of its own (JupyterHub and others share the parent domain), never readable by scripts.
SESSION_COOKIE_NAME = "nbp_superset_session"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = SECURE
SESSION_COOKIE_SAMESITE = "Lax"
PERMANENT_SESSION_LIFETIME = timedelta(hours=8)
WTF_CSRF_ENABLED = True
# No cross-origin callers (Superset's default lets two map-tile hosts call it from their pages).
ENABLE_CORS = False

# Pages load nothing from outside the platform: Superset's default policy lets the browser fetch a
# telemetry pixel and map tiles from third parties; ours allows only Superset itself.
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'"],
        "script-src": ["'self'", "'strict-dynamic'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    # The ingress terminates TLS; the session cookie's flags are the ones above.
    "force_https": False,
    "session_cookie_secure": SECURE,
    "session_cookie_samesite": SESSION_COOKIE_SAMESITE,
}

# No Redis, no Celery: in-process caches, in-memory rate limits, no async queries or reports.
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300}
DATA_CACHE_CONFIG = {**CACHE_CONFIG, "CACHE_KEY_PREFIX": "nbp_data_"}
FILTER_STATE_CACHE_CONFIG = {**CACHE_CONFIG, "CACHE_KEY_PREFIX": "nbp_filter_"}
EXPLORE_FORM_DATA_CACHE_CONFIG = {**CACHE_CONFIG, "CACHE_KEY_PREFIX": "nbp_explore_"}
RATELIMIT_STORAGE_URI = "memory://"
RESULTS_BACKEND = None
# The metadata database is PostgreSQL; no example data.
SUPERSET_LOAD_EXAMPLES = False

# --- sign-in through Keycloak ------------------------------------------------------------------------

AUTH_TYPE = AUTH_OAUTH
OAUTH_PROVIDERS = [
    {
        "name": "keycloak",
        "icon": "fa-key",
        "token_key": "access_token",
        "remote_app": {
            "client_id": setting("NBP_SUPERSET_CLIENT_ID", "superset"),
            "client_secret": setting("NBP_SUPERSET_CLIENT_SECRET"),
            "server_metadata_url": f"{OIDC_INTERNAL}/.well-known/openid-configuration",
            # FAB's keycloak provider reads `<api_base_url>openid-connect/userinfo`.
            "api_base_url": f"{OIDC_INTERNAL}/protocol/",
            # The browser goes to the public address; tokens and keys are fetched at the internal one.
            "authorize_url": f"{OIDC_ISSUER}/protocol/openid-connect/auth",
            "access_token_url": f"{OIDC_INTERNAL}/protocol/openid-connect/token",
            "jwks_uri": f"{OIDC_INTERNAL}/protocol/openid-connect/certs",
            "client_kwargs": {"scope": "openid email profile", "code_challenge_method": "S256"},
        },
    }
]
END_SESSION_URL = f"{OIDC_ISSUER}/protocol/openid-connect/logout"

# The realm's `groups` claim (userinfo) decides the roles, again at every login; nobody is Admin by
# default, and a user in none of the groups gets only the permissionless registration role.
AUTH_ROLES_MAPPING = {group: list(roles) for group, roles in GROUP_ROLES.items()}
AUTH_ROLES_SYNC_AT_LOGIN = True
AUTH_USER_REGISTRATION = True
AUTH_USER_REGISTRATION_ROLE = NO_ACCESS_ROLE
# The Public role stays empty: nothing is visible without signing in.
PUBLIC_ROLE_LIKE = None


class KeycloakAuthOAuthView(AuthOAuthView):
    """FAB's OAuth view, untouched, except that logging out also ends the Keycloak session."""

    @expose("/logout/")
    def logout(self) -> Response:
        id_token = session.get("nbp_id_token")
        user = self._get_authenticated_user()
        logout_user()
        if user is not None:
            self.appbuilder.sm.on_user_logout(user)
        session.clear()
        query: dict[str, str] = {
            "client_id": OAUTH_PROVIDERS[0]["remote_app"]["client_id"],
            "post_logout_redirect_uri": f"{SUPERSET_URL}/login/",
        }
        if id_token:
            query["id_token_hint"] = id_token
        return redirect(f"{END_SESSION_URL}?{urlencode(query)}")


class PlatformSecurityManager(SupersetSecurityManager):
    authoauthview = KeycloakAuthOAuthView

    def set_oauth_session(self, provider: str, oauth_response: dict[str, Any]) -> None:
        super().set_oauth_session(provider, oauth_response)
        # The ID token names the session Keycloak ends at logout (no confirmation page with it).
        session["nbp_id_token"] = oauth_response.get("id_token")


CUSTOM_SECURITY_MANAGER = PlatformSecurityManager

# Where Superset's pages send their usage events (a beacon, also as the login page navigates away).
EVENT_LOG_PATH = "/superset/log/"


def refuse_anonymous_event_log() -> Response | None:
    """An anonymous browser's event beacon is refused before anything writes its session. Flask-Login
    (loading the anonymous user) and Flask-AppBuilder's access check (flashing a message) both did, so the
    answer carried the session the beacon was sent with: arriving after the redirect to Keycloak, it erased
    the sign-in's OAuth state, and the sign-in failed at random. Only the session is read here: the user id
    Flask-Login keeps in it."""
    if request.path == EVENT_LOG_PATH and "_user_id" not in session:
        return Response(status=401)
    return None


def FLASK_APP_MUTATOR(app: Flask) -> None:
    # First of the app's request hooks: none of them runs for a refused beacon.
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_anonymous_event_log)
