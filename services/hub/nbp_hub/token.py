"""The signed-in user's Keycloak access token, inside their JupyterHub server, without pasting one.

The ``nbp`` client finds it by itself (:func:`nbp.client.credentials.hub_token`, asked again before each
request), and finds the API by ``NBP_URL``, which the hub sets in every server::

    import nbp
    with nbp.Client() as client:
        client.notebooks()

For other tools, ``nbp-token`` prints the current token (``curl -H "Authorization: Bearer $(nbp-token)"
$NBP_URL/db/notebooks``) and :func:`access_token` returns it. The hub refreshes the token before it
expires (:mod:`nbp_hub.keycloak_login`), so each call gets one with at least 90 s left: ask again rather
than keep one.
"""

from __future__ import annotations

import os
import sys

from nbp.client.credentials import hub_token


class TokenUnavailable(RuntimeError):
    """Not inside a JupyterHub server, or the hub has no token for its user (sign in again)."""


def access_token() -> str:
    """The server owner's current Keycloak access token (audience ``nbp-api``)."""
    if not os.environ.get("JUPYTERHUB_API_TOKEN"):
        raise TokenUnavailable("not inside a JupyterHub single-user server (JUPYTERHUB_API_TOKEN is unset)")
    token = hub_token()
    if token is None:
        raise TokenUnavailable("the hub gave no access token for this user: sign in to JupyterHub again")
    return token


def main() -> None:
    try:
        print(access_token())
    except TokenUnavailable as error:
        print(f"nbp-token: {error}", file=sys.stderr)
        raise SystemExit(1) from None
