"""The service's own token (client credentials against the real realm): cached, shared, renewed."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from nbp_common.auth import AuthSettings, ServiceTokenError, ServiceTokenProvider
from nbp_common.auth.service_token import _Token

from tests.support.keycloak import LocalKeycloak, guarded_app


def provider(keycloak: LocalKeycloak, renew_before_seconds: float = 30.0) -> ServiceTokenProvider:
    return ServiceTokenProvider(
        keycloak.token_url,
        keycloak.service_client_id,
        keycloak.service_client_secret,
        renew_before_seconds=renew_before_seconds,
    )


async def test_the_token_is_fetched_once_and_reused(keycloak: LocalKeycloak) -> None:
    tokens = provider(keycloak)
    try:
        first = await tokens.token()
        assert await tokens.token() == first
        assert await tokens.headers() == {"Authorization": f"Bearer {first}"}
        assert tokens.fetches == 1
    finally:
        await tokens.aclose()


async def test_concurrent_callers_share_one_fetch(keycloak: LocalKeycloak) -> None:
    tokens = provider(keycloak)
    try:
        got = await asyncio.gather(*(tokens.token() for _ in range(25)))
        assert len(set(got)) == 1
        assert tokens.fetches == 1
    finally:
        await tokens.aclose()


async def test_the_token_is_renewed_shortly_before_it_expires(keycloak: LocalKeycloak) -> None:
    # The executor's tokens live 300 s; renewing 298 s ahead means renewing after 2 s.
    tokens = provider(keycloak, renew_before_seconds=298)
    try:
        await tokens.token()
        await tokens.token()
        assert tokens.fetches == 1
        await asyncio.sleep(2.2)
        await tokens.token()
        assert tokens.fetches == 2
    finally:
        await tokens.aclose()


async def test_as_httpx_auth_the_called_service_sees_the_service(keycloak: LocalKeycloak) -> None:
    app = guarded_app(keycloak.auth_settings())
    tokens = provider(keycloak)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://registry.test", auth=tokens
        ) as client:
            for _ in range(3):
                response = await client.delete("/admin")
                assert response.status_code == 200, response.text
                assert response.json()["username"] == "service-account-nbp-executor"
                assert response.json()["is_service"] is True
        assert tokens.fetches == 1
    finally:
        await tokens.aclose()
        await app.state.nbp_authenticator.aclose()


async def test_a_401_makes_the_auth_flow_fetch_a_new_token_and_retry_once(keycloak: LocalKeycloak) -> None:
    app = guarded_app(keycloak.auth_settings())
    tokens = provider(keycloak)
    # Fault injection (a token the called service no longer accepts, e.g. revoked): a cached token
    # that is not valid, set directly because Keycloak cannot be made to issue one.
    tokens._token = _Token(value="eyJhbGciOiJSUzI1NiJ9.e30.c2ln", renew_at=float("inf"))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://registry.test", auth=tokens
        ) as client:
            response = await client.delete("/admin")
        assert response.status_code == 200, response.text
        assert tokens.fetches == 1
    finally:
        await tokens.aclose()
        await app.state.nbp_authenticator.aclose()


async def test_a_wrong_secret_is_an_error_that_names_the_client(keycloak: LocalKeycloak) -> None:
    tokens = ServiceTokenProvider(keycloak.token_url, keycloak.service_client_id, "not-the-secret")
    try:
        with pytest.raises(ServiceTokenError, match="401 for client nbp-executor"):
            await tokens.token()
    finally:
        await tokens.aclose()


async def test_from_settings_reads_the_environment(
    keycloak: LocalKeycloak, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBP_AUTH", "keycloak")
    monkeypatch.setenv("NBP_OIDC_ISSUER", keycloak.issuer)
    monkeypatch.setenv("NBP_SERVICE_CLIENT_ID", keycloak.service_client_id)
    monkeypatch.setenv("NBP_SERVICE_CLIENT_SECRET", keycloak.service_client_secret)
    settings = AuthSettings()
    assert settings.token_url == keycloak.token_url
    assert keycloak.service_client_secret not in repr(settings)
    tokens = ServiceTokenProvider.from_settings(settings)
    try:
        assert await tokens.token()
    finally:
        await tokens.aclose()
