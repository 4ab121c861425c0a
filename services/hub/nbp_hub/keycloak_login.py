"""JupyterHub's sign-in through Keycloak: one definition, for the local hub and the chart's z2jh hub.

Only the standard library, JupyterHub and OAuthenticator are imported here: the chart mounts this very
file into z2jh's hub image (``jupyterhub_config.d``) and calls :func:`configure` from its values.

- GenericOAuthenticator, client ``jupyterhub``: authorization code with PKCE (S256), scope ``openid``,
  the name from ``preferred_username``; groups come from the token's ``groups`` claim and are managed
  in JupyterHub (``data-scientists`` and ``admins`` may sign in, ``admins`` administer, nobody else).
- Auth state (the user's Keycloak tokens) is kept, encrypted with ``CryptKeeper.keys``.
- Sign-out ends the Keycloak session too (its end-session endpoint, back to the hub's login page).
- The user's access token is refreshed before it expires (:func:`refresh_before_expiry`), and each
  user's own server may read its owner's auth state (role ``server``: ``admin:auth_state!user``), which
  is how notebooks get the token (:mod:`nbp_hub.token`).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import urlencode

CLIENT_ID = "jupyterhub"
ALLOWED_GROUPS = ("data-scientists", "admins")
ADMIN_GROUPS = ("admins",)
# Refresh when less than this is left of the access token (Keycloak's realm: 300 s lifetimes); a user's
# auth is re-checked at most every REFRESH_CHECK_SECONDS, so a token handed out has at least the
# difference left.
REFRESH_MARGIN_SECONDS = 150
REFRESH_CHECK_SECONDS = 60
# Each user's server: its usual rights, and reading its owner's auth state (the token hand-off).
SERVER_SCOPES = ("users:activity!user", "access:servers!server", "admin:auth_state!user")


def seconds_left(jwt: str, now: float | None = None) -> float:
    """What is left of a JWT's lifetime, from its ``exp`` (read, not verified: it came straight from the
    token endpoint over the back channel; the API verifies every token it receives)."""
    try:
        payload = jwt.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"]) - (time.time() if now is None else now)
    except (IndexError, KeyError, TypeError, ValueError):
        return 0.0


async def refresh_before_expiry(authenticator: Any, user: Any, auth_state: dict[str, Any] | None) -> Any:
    """``refresh_user_hook``: a token still fresh needs nothing; one about to expire is exchanged for a new
    one with the refresh token (and the groups are read again); a refused refresh means a new sign-in."""
    if not auth_state or not auth_state.get("access_token"):
        return False
    if seconds_left(auth_state["access_token"]) > REFRESH_MARGIN_SECONDS:
        return True
    refresh_token = auth_state.get("refresh_token")
    if not refresh_token:
        return False
    try:
        params = authenticator.build_refresh_token_request_params(refresh_token)
        token_info = await authenticator.get_token_info(None, params)
    except Exception as error:  # whatever Keycloak said (session ended, token revoked): sign in again
        authenticator.log.info("refreshing %s's token failed (%s): a new sign-in is needed", user.name, error)
        return False
    token_info.setdefault("refresh_token", refresh_token)
    # OAuthenticator's own path from a token response to the auth model (userinfo, groups, admin).
    return await authenticator._token_to_auth_model(token_info)


def end_session_url(issuer_public: str, hub_public_url: str) -> str:
    query = urlencode({"client_id": CLIENT_ID, "post_logout_redirect_uri": f"{hub_public_url}/hub/login"})
    return f"{issuer_public}/protocol/openid-connect/logout?{query}"


def configure(
    c: Any,
    *,
    issuer_public: str,
    issuer_internal: str,
    hub_public_url: str,
    client_secret_value: str,
    crypt_key: bytes | None,
) -> None:
    """Sign-in settings onto JupyterHub's config object ``c``.

    ``issuer_public`` is the realm's URL as browsers reach it; ``issuer_internal`` as the hub reaches it
    (the same locally; the in-cluster service in Kubernetes). ``crypt_key`` None leaves the auth-state key
    to whoever sets ``CryptKeeper.keys`` (z2jh generates and keeps one).
    """
    public = f"{issuer_public}/protocol/openid-connect"
    internal = f"{issuer_internal}/protocol/openid-connect"
    c.JupyterHub.authenticator_class = "generic-oauth"
    auth = c.GenericOAuthenticator
    auth.client_id = CLIENT_ID
    auth.client_secret = client_secret_value
    auth.login_service = "Keycloak"
    auth.authorize_url = f"{public}/auth"
    auth.token_url = f"{internal}/token"
    auth.userdata_url = f"{internal}/userinfo"
    auth.oauth_callback_url = f"{hub_public_url}/hub/oauth_callback"
    auth.logout_redirect_url = end_session_url(issuer_public, hub_public_url)
    auth.scope = ["openid"]
    auth.username_claim = "preferred_username"
    auth.enable_pkce = True
    auth.manage_groups = True
    auth.auth_state_groups_key = "oauth_user.groups"
    auth.allowed_groups = set(ALLOWED_GROUPS)
    auth.admin_groups = set(ADMIN_GROUPS)
    auth.refresh_user_hook = refresh_before_expiry
    c.Authenticator.enable_auth_state = True
    c.Authenticator.auth_refresh_age = REFRESH_CHECK_SECONDS
    if crypt_key is not None:
        c.CryptKeeper.keys = [crypt_key]
    c.JupyterHub.load_roles = [
        {"name": "user", "scopes": ["self", "admin:auth_state!user"]},
        {"name": "server", "scopes": list(SERVER_SCOPES)},
    ]
