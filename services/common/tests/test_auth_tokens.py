"""Tokens from the real realm through the FastAPI dependency: who is let in, and every way to be refused.

Each refusal is a 401 with ``WWW-Authenticate: Bearer realm="notebook-platform", error="invalid_token"``
and the same detail whatever was wrong, so that the answer teaches an attacker nothing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from nbp_common.auth import AuthenticationError, TokenVerifier

from tests.support.keycloak import (
    NOAUD_CLIENT,
    SHORTLIVED_CLIENT,
    LocalKeycloak,
    bearer,
    guarded_client,
)

INVALID = 'Bearer realm="notebook-platform", error="invalid_token"'
MISSING = 'Bearer realm="notebook-platform"'


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(unb64url(header)), json.loads(unb64url(payload)), signature


def compact(header: dict[str, Any], payload: dict[str, Any], signature: str = "") -> str:
    return ".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode()), signature])


async def refused(api: httpx.AsyncClient, token: str, path: str = "/whoami") -> httpx.Response:
    response = await api.get(path, headers=bearer(token))
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == INVALID
    assert response.json()["detail"] == "the access token is not valid; sign in again"
    return response


# --- accepted ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "roles", "groups", "can_write", "is_admin"),
    [
        ("alice", ["nbp-user"], ["data-scientists"], True, False),
        ("carol", ["nbp-viewer"], ["analysts"], False, False),
        ("dana", ["nbp-admin"], ["admins"], True, True),
        ("erin", [], [], False, False),
    ],
)
async def test_a_users_token_is_accepted_with_username_roles_and_groups(
    keycloak: LocalKeycloak,
    api: httpx.AsyncClient,
    username: str,
    roles: list[str],
    groups: list[str],
    can_write: bool,
    is_admin: bool,
) -> None:
    token = await keycloak.access_token(username)
    response = await api.get("/whoami", headers=bearer(token))
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["username"] == username
    assert [r for r in seen["roles"] if r.startswith("nbp-")] == roles
    assert seen["groups"] == groups
    assert (seen["can_write"], seen["is_admin"], seen["is_service"]) == (can_write, is_admin, False)
    assert seen["authenticated"] is True
    assert seen["client_id"] == "nbp-test"


async def test_a_service_accounts_token_is_accepted_as_a_service(
    keycloak: LocalKeycloak, api: httpx.AsyncClient
) -> None:
    token = await keycloak.service_token()
    response = await api.delete("/admin", headers=bearer(token))
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["username"] == "service-account-nbp-executor"
    assert "nbp-service" in seen["roles"]
    assert (seen["is_service"], seen["is_admin"], seen["can_write"]) == (True, True, True)
    assert seen["client_id"] == "nbp-executor"


@pytest.mark.parametrize(
    ("username", "allowed"),
    [
        ("erin", {"/whoami"}),
        ("carol", {"/whoami", "/read"}),
        ("alice", {"/whoami", "/read", "/write"}),
        ("dana", {"/whoami", "/read", "/write", "/admin"}),
    ],
)
async def test_roles_decide_what_a_valid_token_may_do(
    keycloak: LocalKeycloak, api: httpx.AsyncClient, username: str, allowed: set[str]
) -> None:
    headers = bearer(await keycloak.access_token(username))
    answers = {
        "/whoami": (await api.get("/whoami", headers=headers)).status_code,
        "/read": (await api.get("/read", headers=headers)).status_code,
        "/write": (await api.post("/write", headers=headers)).status_code,
        "/admin": (await api.delete("/admin", headers=headers)).status_code,
    }
    assert answers == {path: 200 if path in allowed else 403 for path in answers}


# --- refused: the header ---------------------------------------------------------------------------


async def test_no_header_is_a_401_with_a_plain_challenge(api: httpx.AsyncClient) -> None:
    response = await api.get("/whoami")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == MISSING
    assert "Authorization: Bearer" in response.json()["detail"]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer two tokens",
        "Basic YWxpY2U6bmJwLWRldi1wYXNzd29yZA==",
        "Token abc.def.ghi",
        "Bearer not-a-jwt",
        "Bearer a.b",
        "Bearer ...",
        "Bearer " + "A" * 20000,
    ],
)
async def test_a_malformed_header_is_a_401(api: httpx.AsyncClient, header: str) -> None:
    response = await api.get("/whoami", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == INVALID


# --- refused: the token ----------------------------------------------------------------------------


async def test_an_expired_token_is_refused_and_the_leeway_is_honoured(keycloak: LocalKeycloak) -> None:
    token = await keycloak.access_token("alice", client_id=SHORTLIVED_CLIENT)
    _, claims, _ = parts(token)
    assert claims["exp"] - claims["iat"] == 2  # the test client's access.token.lifespan
    async with guarded_client(keycloak.auth_settings(oidc_leeway_seconds=0)) as strict:
        assert (await strict.get("/whoami", headers=bearer(token))).status_code == 200
        await asyncio.sleep(3.2)
        await refused(strict, token)  # also once it was verified (and remembered) while valid
    # The same token within the default 30 s of tolerated clock skew:
    async with guarded_client(keycloak.auth_settings()) as tolerant:
        assert (await tolerant.get("/whoami", headers=bearer(token))).status_code == 200


async def test_a_tampered_signature_is_refused(keycloak: LocalKeycloak, api: httpx.AsyncClient) -> None:
    token = await keycloak.access_token("alice")
    head, payload, signature = token.split(".")
    middle = len(signature) // 2
    flipped = signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]
    await refused(api, f"{head}.{payload}.{flipped}")


async def test_a_tampered_payload_is_refused(keycloak: LocalKeycloak, api: httpx.AsyncClient) -> None:
    header, claims, signature = parts(await keycloak.access_token("alice"))
    claims["preferred_username"] = "dana"
    claims["realm_access"] = {"roles": ["nbp-admin"]}
    await refused(api, compact(header, claims, signature))


async def test_a_token_for_another_audience_is_refused(
    keycloak: LocalKeycloak, api: httpx.AsyncClient
) -> None:
    token = await keycloak.access_token("dana", client_id=NOAUD_CLIENT)
    _, claims, _ = parts(token)
    assert "nbp-api" not in (claims.get("aud") or [])
    await refused(api, token)
    # And a verifier that expects another audience refuses the platform's own tokens.
    async with guarded_client(keycloak.auth_settings(oidc_audience="another-api")) as other:
        await refused(other, await keycloak.access_token("dana"))


async def test_a_token_from_another_issuer_is_refused(
    keycloak: LocalKeycloak, api: httpx.AsyncClient
) -> None:
    # The same realm and key, but the issuer spelled differently: Keycloak (no fixed hostname in dev
    # mode) writes the host it was asked through into `iss`.
    port = urlsplit(keycloak.url).port
    answer = await keycloak.token_response("alice", headers={"Host": f"localhost:{port}"})
    token = answer["access_token"]
    _, claims, _ = parts(token)
    assert claims["iss"] == keycloak.issuer.replace("127.0.0.1", "localhost")
    await refused(api, token)


async def test_a_master_realm_token_is_refused(keycloak: LocalKeycloak, api: httpx.AsyncClient) -> None:
    await refused(api, await keycloak.master_admin_token())


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none_is_refused(keycloak: LocalKeycloak, api: httpx.AsyncClient, alg: str) -> None:
    header, claims, _ = parts(await keycloak.access_token("alice"))
    await refused(api, compact({**header, "alg": alg}, claims))
    await refused(api, compact({**header, "alg": alg}, claims, "c2lnbmF0dXJl"))


async def test_hs256_signed_with_a_guessable_key_is_refused_before_any_key_lookup(
    keycloak: LocalKeycloak,
) -> None:
    header, claims, _ = parts(await keycloak.access_token("alice"))
    async with httpx.AsyncClient() as client:
        jwks = (await client.get(keycloak.jwks_url)).json()
    rsa_jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    public_pem = (
        jwt.PyJWK(rsa_jwk)
        .key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = TokenVerifier(keycloak.auth_settings())
    async with guarded_client(keycloak.auth_settings(), verifier=verifier) as api:
        for key in ("secret", "", public_pem):  # the last: the classic RS256/HS256 key confusion
            for alg in ("HS256", "HS512"):
                forged = _hmac_token(claims, key, alg, header["kid"])
                await refused(api, forged)
        assert verifier.jwks.fetches == 0  # refused by the allow-list, never reaching the key set


def _hmac_token(claims: dict[str, Any], key: str, alg: str, kid: str) -> str:
    signing_input = compact({"alg": alg, "typ": "JWT", "kid": kid}, claims)[:-1]
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    signature = hmac.new(key.encode(), signing_input.encode(), digest).digest()
    return signing_input + "." + b64url(signature)


async def test_an_id_token_is_refused_in_place_of_an_access_token(
    keycloak: LocalKeycloak, api: httpx.AsyncClient
) -> None:
    answer = await keycloak.token_response("alice", scope="openid")
    id_token = answer["id_token"]
    await refused(api, id_token)
    # Even a verifier whose audience is the ID token's (the client id) refuses it, for its type.
    verifier = TokenVerifier(keycloak.auth_settings(oidc_audience="nbp-test"))
    try:
        with pytest.raises(AuthenticationError, match="'ID' is not an access token"):
            await verifier.verify(id_token)
    finally:
        await verifier.aclose()


async def test_a_refresh_token_is_refused(keycloak: LocalKeycloak, api: httpx.AsyncClient) -> None:
    answer = await keycloak.token_response("alice")
    await refused(api, answer["refresh_token"])


async def test_every_refusal_says_the_same(keycloak: LocalKeycloak, api: httpx.AsyncClient) -> None:
    good = await keycloak.access_token("alice")
    header, claims, signature = parts(good)
    answers = [
        await refused(api, compact({**header, "alg": "none"}, claims)),
        await refused(api, compact(header, {**claims, "aud": "x"}, signature)),
        await refused(api, await keycloak.master_admin_token()),
        await refused(api, (await keycloak.token_response("alice", scope="openid"))["id_token"]),
    ]
    assert len({(r.text, r.headers["WWW-Authenticate"]) for r in answers}) == 1
