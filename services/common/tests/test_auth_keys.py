"""The realm's keys: rotation through Keycloak's admin API, the JWKS cache and its refetch rate limit,
ES256, and a key set that cannot be fetched."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from nbp_common.auth import AuthenticationError, TokenVerifier

from tests.support.keycloak import LocalKeycloak, bearer, guarded_client, key_provider

SIGNATURE_ALG = "access.token.signed.response.alg"


def header_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return header


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


async def status(api: httpx.AsyncClient, token: str) -> int:
    return (await api.get("/whoami", headers=bearer(token))).status_code


async def set_key_state(admin: httpx.AsyncClient, component_id: str, **state: bool) -> None:
    component = (await admin.get(f"/components/{component_id}")).json()
    for key, value in state.items():
        component["config"][key] = ["true" if value else "false"]
    answer = await admin.put(f"/components/{component_id}", json=component)
    assert answer.status_code == 204, answer.text


async def test_key_rotation_new_tokens_accepted_without_restart_old_ones_until_they_expire(
    keycloak: LocalKeycloak,
) -> None:
    # One app for the whole test: it is never restarted. Its verifier may refetch keys at once.
    async with (
        guarded_client(keycloak.auth_settings(oidc_jwks_min_refresh_seconds=0)) as api,
        keycloak.admin_api() as admin,
    ):
        old_token = await keycloak.access_token("alice")
        assert header_of(old_token)["alg"] == "RS256"
        old_kid = header_of(old_token)["kid"]
        assert await status(api, old_token) == 200  # the realm's keys are now cached

        keys = (await admin.get("/keys")).json()["keys"]
        old = next(key for key in keys if key["kid"] == old_kid)
        old_component = old["providerId"]
        async with key_provider(
            admin,
            name="rsa-rotated-by-test",
            providerId="rsa-generated",
            priority=str(int(old["providerPriority"]) + 100),
            keySize="2048",
            algorithm="RS256",
            active="true",
            enabled="true",
        ):
            try:
                new_token = await keycloak.access_token("alice")
                new_kid = header_of(new_token)["kid"]
                assert new_kid != old_kid  # Keycloak signs with the new, higher-priority key

                assert await status(api, new_token) == 200  # unknown kid -> one refetch -> accepted
                assert await status(api, old_token) == 200  # the old key is still in the set

                # Retire the old key: passive keys sign nothing but still verify.
                await set_key_state(admin, old_component, active=False)
                assert header_of(await keycloak.access_token("bob"))["kid"] == new_kid
                async with guarded_client(keycloak.auth_settings()) as fresh:  # a service started now
                    assert await status(fresh, old_token) == 200
                    assert await status(fresh, new_token) == 200
                assert await status(api, old_token) == 200

                # Remove it (disabled): it leaves the key set, and what it signed is refused from then on,
                # by a service started now and, once it fetched the key set again, by the running one
                # (which had verified, and remembered, the old token).
                await set_key_state(admin, old_component, enabled=False)
                async with guarded_client(keycloak.auth_settings()) as fresh:
                    assert await status(fresh, old_token) == 401
                    assert await status(fresh, new_token) == 200
                unknown = forged_with_unknown_key(claims_of(new_token), "not-in-the-realm")
                assert await status(api, unknown) == 401  # an unknown kid: the key set is fetched again
                assert await status(api, old_token) == 401
                assert await status(api, new_token) == 200
            finally:
                await set_key_state(admin, old_component, active=True, enabled=True)
        # The rotated key is gone again: the realm signs with its original key.
        assert header_of(await keycloak.access_token("alice"))["kid"] == old_kid
        assert await status(api, await keycloak.access_token("alice")) == 200


def forged_with_unknown_key(claims: dict[str, Any], kid: str) -> str:
    """Real claims, signed by a key the realm never had."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


async def test_unknown_key_ids_refetch_the_key_set_once_then_are_rate_limited(
    keycloak: LocalKeycloak,
) -> None:
    requests: list[str] = []

    async def count(request: httpx.Request) -> None:
        requests.append(str(request.url))

    async with httpx.AsyncClient(event_hooks={"request": [count]}) as http:
        verifier = TokenVerifier(keycloak.auth_settings(oidc_jwks_min_refresh_seconds=1.0), http_client=http)
        good = await keycloak.access_token("alice")
        claims = claims_of(good)
        await verifier.verify(good)
        assert len(requests) == 1  # the first verification loads the key set

        await asyncio.sleep(1.1)
        for kid in ("made-up-1", "made-up-2"):  # two unknown key ids in quick succession
            with pytest.raises(AuthenticationError, match="unknown key id"):
                await verifier.verify(forged_with_unknown_key(claims, kid))
        assert len(requests) == 2  # one refetch for both

        await asyncio.sleep(1.1)
        forged = [forged_with_unknown_key(claims, f"flood-{n}") for n in range(20)]
        results = await asyncio.gather(*(verifier.verify(t) for t in forged), return_exceptions=True)
        assert all(isinstance(r, AuthenticationError) for r in results)
        assert len(requests) == 3  # twenty at once: still one fetch
        assert set(requests) == {keycloak.jwks_url}
        assert verifier.jwks.fetches == 3

        await verifier.verify(good)  # known key: no fetch at all
        assert len(requests) == 3


async def test_es256_tokens_are_verified_and_the_allow_list_decides(keycloak: LocalKeycloak) -> None:
    async with keycloak.admin_api() as admin:
        client = (await admin.get("/clients", params={"clientId": "nbp-test"})).json()[0]
        original = dict(client["attributes"])
        async with key_provider(
            admin,
            name="ecdsa-by-test",
            providerId="ecdsa-generated",
            priority="100",
            ecdsaEllipticCurveKey="P-256",
            active="true",
            enabled="true",
        ):
            client["attributes"][SIGNATURE_ALG] = "ES256"
            assert (await admin.put(f"/clients/{client['id']}", json=client)).status_code == 204
            try:
                token = await keycloak.access_token("alice")
                assert header_of(token)["alg"] == "ES256"
                async with guarded_client(keycloak.auth_settings()) as api:
                    assert await status(api, token) == 200
                async with guarded_client(keycloak.auth_settings(oidc_algorithms=["RS256"])) as rs_only:
                    assert await status(rs_only, token) == 401
            finally:
                # Keycloak merges attributes on update: the one set above is reset explicitly ("" = the
                # realm's default algorithm), or the realm would go on signing this client's tokens ES256.
                client["attributes"] = {**original, SIGNATURE_ALG: original.get(SIGNATURE_ALG, "")}
                assert (await admin.put(f"/clients/{client['id']}", json=client)).status_code == 204
        assert header_of(await keycloak.access_token("alice"))["alg"] == "RS256"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_without_any_key_the_answer_is_503_not_401(keycloak: LocalKeycloak) -> None:
    # A real fault: nothing listens where the key set should be.
    settings = keycloak.auth_settings(oidc_jwks_url=f"http://127.0.0.1:{closed_port()}/certs")
    token = await keycloak.access_token("alice")
    async with guarded_client(settings) as api:
        started = time.monotonic()
        response = await api.get("/whoami", headers=bearer(token))
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert time.monotonic() - started < 10
