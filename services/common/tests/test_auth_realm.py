"""The realm export and its development additions: what the files hold, and what Keycloak made of them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.keycloak import LocalKeycloak, repo_root

REALM = json.loads((repo_root() / "keycloak-realm" / "realm.json").read_text())
DEV_FILES = sorted((repo_root() / "keycloak-realm" / "dev").glob("*.json"))
PLACEHOLDER = re.compile(r"^\$\{NBP_[A-Z_]+\}$")


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{path}.{key}", value
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}[{index}]")


def client(client_id: str) -> dict[str, Any]:
    return next(c for c in REALM["clients"] if c["clientId"] == client_id)


def scope(name: str) -> dict[str, Any]:
    return next(s for s in REALM["clientScopes"] if s["name"] == name)


def test_the_realm_file_holds_no_user_and_no_secret() -> None:
    assert REALM["realm"] == "notebook-platform"
    assert "users" not in REALM
    for where, value in walk(REALM):
        assert not where.endswith((".credentials", ".password", ".users")), where
        if where.endswith(".secret"):
            assert PLACEHOLDER.match(value), f"{where} must be an ${{ENV}} placeholder, not {value!r}"
    secrets = {c["clientId"]: c.get("secret") for c in REALM["clients"]}
    assert secrets["jupyterhub"] == "${NBP_JUPYTERHUB_CLIENT_SECRET}"
    assert secrets["superset"] == "${NBP_SUPERSET_CLIENT_SECRET}"
    assert secrets["nbp-executor"] == "${NBP_EXECUTOR_CLIENT_SECRET}"


def test_roles_and_the_groups_that_carry_them() -> None:
    roles = {r["name"] for r in REALM["roles"]["realm"]}
    assert {"nbp-admin", "nbp-user", "nbp-viewer", "nbp-service"} <= roles
    groups = {g["name"]: g["realmRoles"] for g in REALM["groups"]}
    assert groups == {"admins": ["nbp-admin"], "data-scientists": ["nbp-user"], "analysts": ["nbp-viewer"]}


def test_client_scopes_are_declared_with_the_built_in_ones() -> None:
    names = {s["name"] for s in REALM["clientScopes"]}
    assert {"basic", "profile", "email", "roles", "web-origins", "groups", "nbp-api-audience"} <= names
    assert set(REALM["defaultDefaultClientScopes"]) >= {
        "basic",
        "profile",
        "email",
        "roles",
        "web-origins",
        "groups",
    }
    (groups,) = scope("groups")["protocolMappers"]
    assert groups["protocolMapper"] == "oidc-group-membership-mapper"
    assert groups["config"]["full.path"] == "false"
    (audience,) = scope("nbp-api-audience")["protocolMappers"]
    assert audience["protocolMapper"] == "oidc-audience-mapper"
    assert audience["config"]["included.client.audience"] == "nbp-api"
    assert audience["config"]["access.token.claim"] == "true"


@pytest.mark.parametrize(("client_id", "path"), [("jupyterhub", "/hub/"), ("superset", "/oauth-authorized/")])
def test_browser_logins_are_confidential_code_flow_with_pkce_and_exact_uris(
    client_id: str, path: str
) -> None:
    c = client(client_id)
    assert c["publicClient"] is False
    assert (c["standardFlowEnabled"], c["implicitFlowEnabled"], c["directAccessGrantsEnabled"]) == (
        True,
        False,
        False,
    )
    assert c["serviceAccountsEnabled"] is False
    assert c["attributes"]["pkce.code.challenge.method"] == "S256"
    assert c["attributes"]["oauth2.device.authorization.grant.enabled"] == "false"
    for uri in [*c["redirectUris"], c["attributes"]["post.logout.redirect.uris"]]:
        assert "${NBP_DOMAIN}" in uri, uri
        assert "*" not in uri, uri
    assert any(path in uri for uri in c["redirectUris"])


def test_the_api_client_has_no_flow_and_the_cli_is_public_with_pkce_and_device_flow() -> None:
    api = client("nbp-api")
    assert not any(
        api[f] for f in ("standardFlowEnabled", "implicitFlowEnabled", "directAccessGrantsEnabled")
    )
    assert api["serviceAccountsEnabled"] is False
    cli = client("nbp-cli")
    assert (cli["publicClient"], cli["standardFlowEnabled"]) == (True, True)
    assert cli["directAccessGrantsEnabled"] is False
    assert cli["attributes"]["pkce.code.challenge.method"] == "S256"
    assert cli["attributes"]["oauth2.device.authorization.grant.enabled"] == "true"
    assert all(uri.startswith(("http://127.0.0.1/", "http://[::1]/")) for uri in cli["redirectUris"])
    executor = client("nbp-executor")
    assert (executor["serviceAccountsEnabled"], executor["standardFlowEnabled"]) == (True, False)
    assert "nbp-api-audience" in executor["defaultClientScopes"]


def test_dev_users_and_test_clients_live_only_in_the_development_file() -> None:
    assert DEV_FILES, "keycloak-realm/dev/*.json is missing"
    dev = [json.loads(f.read_text()) for f in DEV_FILES]
    users = {u["username"] for d in dev for u in d.get("users", [])}
    assert {"alice", "bob", "carol", "dana", "erin"} <= users
    realm_clients = {c["clientId"] for c in REALM["clients"]}
    dev_clients = [c for d in dev for c in d.get("clients", [])]
    test_clients = {c["clientId"] for c in dev_clients} - realm_clients
    assert {"nbp-test", "nbp-test-shortlived", "nbp-test-noaud"} <= test_clients
    assert not any(c["directAccessGrantsEnabled"] for c in REALM["clients"])  # no password grant in prod
    # A realm client is only ever extended by loopback addresses, never loosened otherwise.
    for extension in (c for c in dev_clients if c["clientId"] in realm_clients):
        assert set(extension) <= {"clientId", "redirectUris", "attributes"}, extension
        assert all(uri.startswith("http://127.0.0.1/") for uri in extension.get("redirectUris", []))
        assert set(extension.get("attributes", {})) <= {"post.logout.redirect.uris"}
        for attribute, value in extension.get("attributes", {}).items():
            original = client(extension["clientId"])["attributes"][attribute]
            added = value.split("##")
            assert added[0] == original
            assert all(uri.startswith("http://127.0.0.1/") for uri in added[1:])


async def test_keycloak_resolved_the_placeholders_at_import(keycloak: LocalKeycloak) -> None:
    async with keycloak.admin_api() as admin:
        clients = {c["clientId"]: c for c in (await admin.get("/clients")).json()}
        executor_secret = (await admin.get(f"/clients/{clients['nbp-executor']['id']}/client-secret")).json()
    assert executor_secret["value"] == keycloak.service_client_secret
    for client_id in ("jupyterhub", "superset"):
        imported = clients[client_id]
        uris = [*imported["redirectUris"], imported["attributes"]["post.logout.redirect.uris"]]
        assert all("${" not in uri and uri.startswith(("http://", "https://")) for uri in uris), uris


@pytest.mark.parametrize(
    ("redirect_uri", "accepted"),
    [
        ("http://127.0.0.1:53219/callback", True),  # any port on loopback (RFC 8252)
        ("http://127.0.0.1:8765/callback", True),
        ("http://127.0.0.1:53219/elsewhere", False),
        ("http://localhost:53219/callback", False),
        ("https://attacker.example/callback", False),
    ],
)
async def test_the_cli_signs_in_on_any_loopback_port_and_nowhere_else(
    keycloak: LocalKeycloak, redirect_uri: str, accepted: bool
) -> None:
    params = {
        "client_id": "nbp-cli",
        "response_type": "code",
        "scope": "openid",
        "redirect_uri": redirect_uri,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{keycloak.issuer}/protocol/openid-connect/auth", params=params)
    assert (response.status_code == 200) is accepted, response.status_code


@pytest.mark.parametrize(
    ("client_id", "redirect_uri", "accepted"),
    [
        ("jupyterhub", "http://127.0.0.1:8000/hub/oauth_callback", True),  # the local JupyterHub, any port
        ("jupyterhub", "http://127.0.0.1:41234/hub/oauth_callback", True),
        ("jupyterhub", "http://127.0.0.1:8000/hub/elsewhere", False),
        ("jupyterhub", "http://localhost:8000/hub/oauth_callback", False),
        ("jupyterhub", "https://attacker.example/hub/oauth_callback", False),
        ("superset", "http://127.0.0.1:8088/oauth-authorized/keycloak", True),  # the local Superset, any port
        ("superset", "http://127.0.0.1:41234/oauth-authorized/keycloak", True),
        ("superset", "http://127.0.0.1:8088/oauth-authorized/github", False),
        ("superset", "http://localhost:8088/oauth-authorized/keycloak", False),
        ("superset", "https://attacker.example/oauth-authorized/keycloak", False),
    ],
)
async def test_the_local_browser_logins_sign_in_on_loopback_and_nowhere_else(
    keycloak: LocalKeycloak, client_id: str, redirect_uri: str, accepted: bool
) -> None:
    params = {
        "client_id": client_id,
        "response_type": "code",
        "scope": "openid",
        "redirect_uri": redirect_uri,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.get(f"{keycloak.issuer}/protocol/openid-connect/auth", params=params)
    assert (response.status_code == 200) is accepted, response.status_code


async def test_the_cli_device_flow_is_on(keycloak: LocalKeycloak) -> None:
    # Keycloak applies the client's PKCE requirement to the device authorization request too.
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{keycloak.issuer}/protocol/openid-connect/auth/device",
            data={
                "client_id": "nbp-cli",
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "code_challenge_method": "S256",
            },
        )
    assert response.status_code == 200, response.text
    assert {"device_code", "user_code", "verification_uri"} <= response.json().keys()


def test_dev_file_is_not_valid_alone_as_a_realm() -> None:
    # It is a partial, merged by scripts/keycloak.py: without "realm" Keycloak cannot import it by mistake.
    for path in DEV_FILES:
        assert "realm" not in json.loads(Path(path).read_text())
