"""Settings, the roles' meaning, NBP_AUTH=none and its loopback-only rule (no Keycloak needed)."""

from __future__ import annotations

import logging

import pytest
from nbp_common.auth import (
    DEV_PRINCIPAL,
    AuthSettings,
    InsecureBindError,
    Principal,
    assert_loopback_only,
)
from pydantic import ValidationError

from tests.support.keycloak import bearer, guarded_client

ISSUER = "http://127.0.0.1:8180/realms/notebook-platform"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "NBP_AUTH",
        "NBP_OIDC_ISSUER",
        "NBP_OIDC_JWKS_URL",
        "NBP_OIDC_ALGORITHMS",
        "NBP_OIDC_TOKEN_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_development_mode_with_the_platform_audience() -> None:
    settings = AuthSettings()
    assert settings.auth == "none"
    assert settings.oidc_audience == "nbp-api"
    assert settings.oidc_algorithms == ["RS256", "ES256"]
    assert 0 < settings.oidc_leeway_seconds <= 60


def test_keycloak_mode_needs_an_issuer() -> None:
    with pytest.raises(ValidationError, match="NBP_OIDC_ISSUER"):
        AuthSettings(auth="keycloak")


def test_key_set_and_token_urls_default_to_keycloaks_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBP_AUTH", "keycloak")
    monkeypatch.setenv("NBP_OIDC_ISSUER", ISSUER + "/")
    settings = AuthSettings()
    assert settings.oidc_issuer == ISSUER
    assert settings.jwks_url == ISSUER + "/protocol/openid-connect/certs"
    assert settings.token_url == ISSUER + "/protocol/openid-connect/token"
    monkeypatch.setenv("NBP_OIDC_JWKS_URL", "http://keycloak.nbp.svc:8080/realms/notebook-platform/certs")
    assert AuthSettings().jwks_url == "http://keycloak.nbp.svc:8080/realms/notebook-platform/certs"


def test_algorithms_from_a_comma_separated_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBP_OIDC_ALGORITHMS", "RS256, PS256")
    assert AuthSettings().oidc_algorithms == ["RS256", "PS256"]


@pytest.mark.parametrize("algorithms", [["none"], ["HS256"], ["RS256", "HS512"], ["ES256", "None"], []])
def test_none_and_hmac_algorithms_cannot_be_configured(algorithms: list[str]) -> None:
    with pytest.raises(ValidationError, match="algorithm"):
        AuthSettings(oidc_algorithms=algorithms)


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        # roles: (can_read, can_write, is_admin, is_service)
        (set(), (False, False, False, False)),
        ({"nbp-viewer"}, (True, False, False, False)),
        ({"nbp-user"}, (True, True, False, False)),
        ({"nbp-admin"}, (True, True, True, False)),
        ({"nbp-service"}, (True, True, True, True)),
        ({"offline_access", "uma_authorization"}, (False, False, False, False)),
    ],
)
def test_what_each_role_allows(roles: set[str], expected: tuple[bool, bool, bool, bool]) -> None:
    principal = Principal(username="someone", roles=frozenset(roles))
    assert (principal.can_read, principal.can_write, principal.is_admin, principal.is_service) == expected


def test_ownership_rules() -> None:
    alice = Principal(username="alice", roles=frozenset({"nbp-user"}))
    carol = Principal(username="carol", roles=frozenset({"nbp-viewer"}))
    dana = Principal(username="dana", roles=frozenset({"nbp-admin"}))
    assert (alice.may_read("alice"), alice.may_write("alice")) == (True, True)
    assert (alice.may_read("bob"), alice.may_write("bob")) == (False, False)
    assert (carol.may_read("carol"), carol.may_write("carol")) == (True, False)
    assert (dana.may_read("bob"), dana.may_write("bob")) == (True, True)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "", "192.168.1.10", "10.0.0.1", "example.org", "nbp.localhost"]
)
def test_auth_none_refuses_to_listen_beyond_loopback(host: str) -> None:
    with pytest.raises(InsecureBindError, match="NBP_AUTH=none"):
        assert_loopback_only(host, AuthSettings(auth="none"))


def test_auth_none_refuses_when_any_of_several_listeners_is_exposed() -> None:
    with pytest.raises(InsecureBindError, match=r"0\.0\.0\.0"):
        assert_loopback_only(["127.0.0.1", "0.0.0.0"], AuthSettings(auth="none"))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_auth_none_on_loopback_starts_and_says_so_loudly(host: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="nbp.auth"):
        assert_loopback_only(host, AuthSettings(auth="none"))
    assert any(
        "AUTHENTICATION IS OFF" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records
    )


def test_with_keycloak_any_address_is_allowed() -> None:
    assert_loopback_only("0.0.0.0", AuthSettings(auth="keycloak", oidc_issuer=ISSUER))


async def test_auth_none_makes_every_caller_the_unauthenticated_dev_principal() -> None:
    async with guarded_client(AuthSettings(auth="none"), base_url="http://127.0.0.1:8002") as api:
        for headers in ({}, bearer("anything"), {"Authorization": "Basic Zm9vOmJhcg=="}):
            response = await api.delete("/admin", headers=headers)
            assert response.status_code == 200
            seen = response.json()
            assert seen["username"] == DEV_PRINCIPAL.username == "dev"
            assert seen["authenticated"] is False
            assert seen["roles"] == ["nbp-admin", "nbp-user", "nbp-viewer"]


async def test_auth_none_refuses_a_request_that_arrived_on_a_non_loopback_address() -> None:
    # The ASGI server reports the local address a connection came in on (here, through the test
    # transport, the URL's host): with auth off, only loopback is served even if bound wider.
    async with guarded_client(AuthSettings(auth="none"), base_url="http://10.1.2.3:8002") as api:
        response = await api.get("/whoami")
        assert response.status_code == 401
        assert "NBP_AUTH=none" in response.json()["detail"]
