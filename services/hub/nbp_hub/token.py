"""The signed-in user's Keycloak access token, inside their JupyterHub server, without pasting one.

    from nbp_hub.token import access_token
    requests.get(f"{api_url()}/db/notebooks", headers={"Authorization": f"Bearer {access_token()}"})

    $ nbp-token            # prints it (for curl: -H "Authorization: Bearer $(nbp-token)")

JupyterHub gives every single-user server ``JUPYTERHUB_API_URL``, ``JUPYTERHUB_USER`` and a token of its
own (``JUPYTERHUB_API_TOKEN``) that may read its owner's auth state (role ``server``, see
:mod:`nbp_hub.keycloak_login`). Asking the hub for the owner's model (``GET /hub/api/users/<name>``; the
``/user`` endpoint never includes auth state) returns the owner's current
access token; the hub refreshes it first when it is about to expire, so every call here gets a token with
at least a minute left. Ask again for each batch of calls rather than keeping one.

The platform's API is at ``NBP_API_URL`` in the server's environment when the sandbox passes it, else at
the address this helper is told (``api_url(default)``).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class TokenUnavailable(RuntimeError):
    """Not inside a JupyterHub server, or the hub has no token for its user (sign in again)."""


def hub_user() -> dict[str, Any]:
    """The hub's model of this server's owner, auth state included."""
    api = os.environ.get("JUPYTERHUB_API_URL")
    token = os.environ.get("JUPYTERHUB_API_TOKEN")
    user = os.environ.get("JUPYTERHUB_USER")
    if not api or not token or not user:
        raise TokenUnavailable(
            "not inside a JupyterHub single-user server "
            "(JUPYTERHUB_API_URL / JUPYTERHUB_API_TOKEN / JUPYTERHUB_USER unset)"
        )
    request = urllib.request.Request(
        f"{api}/users/{urllib.parse.quote(user)}", headers={"Authorization": f"token {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            model: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as error:
        raise TokenUnavailable(f"the hub refused ({error.code}): sign in to JupyterHub again") from None
    except urllib.error.URLError as error:
        raise TokenUnavailable(f"the hub at {api} did not answer: {error.reason}") from None
    return model


def access_token() -> str:
    """The owner's current Keycloak access token (audience ``nbp-api``)."""
    state = hub_user().get("auth_state") or {}
    token = state.get("access_token")
    if not isinstance(token, str) or not token:
        raise TokenUnavailable("the hub holds no access token for this user: sign in to JupyterHub again")
    return token


def api_url(default: str = "http://127.0.0.1:8002") -> str:
    """Where the platform's API is, as this server's environment says."""
    return os.environ.get("NBP_API_URL", default).rstrip("/")


def main() -> None:
    try:
        print(access_token())
    except TokenUnavailable as error:
        print(f"nbp-token: {error}", file=sys.stderr)
        raise SystemExit(1) from None
