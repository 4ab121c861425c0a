"""The sign-in settings and the refresh rule, without a hub (the browser tests in tests/test_hub.py run
them for real)."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from nbp_hub import keycloak_login
from traitlets.config import Config


def jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.signature"


def test_seconds_left_reads_the_expiry_and_treats_garbage_as_expired() -> None:
    assert keycloak_login.seconds_left(jwt({"exp": 1_000_300}), now=1_000_000) == 300
    assert keycloak_login.seconds_left("not-a-jwt", now=0) == 0
    assert keycloak_login.seconds_left(jwt({"sub": "x"}), now=0) == 0


class User:
    name = "alice"


class Authenticator:
    log = logging.getLogger("test")


async def test_a_fresh_token_needs_no_refresh_and_no_token_means_a_new_sign_in() -> None:
    import time

    fresh = {"access_token": jwt({"exp": time.time() + 290}), "refresh_token": "r"}
    assert await keycloak_login.refresh_before_expiry(Authenticator(), User(), fresh) is True
    assert await keycloak_login.refresh_before_expiry(Authenticator(), User(), None) is False
    stale_without_refresh = {"access_token": jwt({"exp": time.time() + 10})}
    assert await keycloak_login.refresh_before_expiry(Authenticator(), User(), stale_without_refresh) is False


def test_configure_sets_the_same_rules_as_the_chart() -> None:
    c = Config()
    keycloak_login.configure(
        c,
        issuer_public="https://nbp.example/auth/realms/notebook-platform",
        issuer_internal="http://keycloak:80/auth/realms/notebook-platform",
        hub_public_url="https://nbp.example",
        client_secret_value="s",
        crypt_key=None,
    )
    auth = c.GenericOAuthenticator
    assert (
        auth.authorize_url == "https://nbp.example/auth/realms/notebook-platform/protocol/openid-connect/auth"
    )
    assert auth.token_url == "http://keycloak:80/auth/realms/notebook-platform/protocol/openid-connect/token"
    assert auth.enable_pkce is True
    assert auth.allowed_groups == {"data-scientists", "admins"}
    assert auth.admin_groups == {"admins"}
    assert auth.logout_redirect_url.startswith(
        "https://nbp.example/auth/realms/notebook-platform/protocol/openid-connect/logout?client_id=jupyterhub"
    )
    assert "post_logout_redirect_uri=https%3A%2F%2Fnbp.example%2Fhub%2Flogin" in auth.logout_redirect_url
    assert "CryptKeeper" not in c  # z2jh keeps the key
    roles = {role["name"]: role["scopes"] for role in c.JupyterHub.load_roles}
    assert "admin:auth_state!user" in roles["server"]
    assert "admin:auth_state!user" in roles["user"]
