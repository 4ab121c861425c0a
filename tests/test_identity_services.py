"""The services behind real Keycloak tokens: who may read and change what (DESIGN §5).

Users of the development realm (keycloak-realm/dev/): alice and bob are data scientists (nbp-user),
carol an analyst (nbp-viewer), dana an admin, erin has no role; the executor's client holds nbp-service.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jwt
import pytest
from nbp_common.app import ServiceSpec
from sqlalchemy.engine import URL

from tests.support.common import app_client, settings_for, start_service
from tests.support.keycloak import (
    NOAUD_CLIENT,
    SHORTLIVED_CLIENT,
    LocalKeycloak,
    bearer,
    key_provider,
    keycloak,
)

__all__ = ["keycloak"]  # the session fixture, imported for pytest

PUBLIC = ["/", "/health", "/ready", "/metrics", "/docs", "/redoc", "/openapi.json"]


@pytest.fixture
async def api(
    keycloak: LocalKeycloak, database_url: URL, service_specs: Sequence[ServiceSpec]
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(service_specs, settings_for(database_url), keycloak.auth_settings()) as client:
        yield client


@pytest.fixture(scope="session")
def tokens(keycloak: LocalKeycloak) -> dict[str, str]:
    async def fetch() -> dict[str, str]:
        names = ["alice", "bob", "carol", "dana", "erin"]
        found = await asyncio.gather(*(keycloak.access_token(name) for name in names))
        return dict(zip(names, found, strict=True)) | {"service": await keycloak.service_token()}

    return asyncio.run(fetch())


def notebook(owner: str, name: str = "forecast") -> dict[str, str]:
    return {"name": name, "file_path": f"{name}-{owner}.ipynb", "username": owner}


def event(execution_id: int, owner: str) -> dict[str, object]:
    now = datetime.now(UTC).isoformat()
    return {
        "event_id": str(uuid.uuid4()),
        "execution_id": execution_id,
        "status": "completed",
        "occurred_at": now,
        "queued_at": now,
        "username": owner,
        "input_path": "forecast.ipynb",
    }


async def test_only_the_platform_endpoints_answer_without_a_token(api: httpx.AsyncClient) -> None:
    for path in PUBLIC:
        assert (await api.get(path)).status_code == 200, path
    for method, path in [("GET", "/db/notebooks"), ("POST", "/db/notebooks"), ("GET", "/db/executions/1")]:
        response = await api.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["code"] == "unauthorized"


async def test_bad_tokens_are_401_with_nothing_that_helps_an_attacker(
    api: httpx.AsyncClient, keycloak: LocalKeycloak, tokens: dict[str, str]
) -> None:
    good = tokens["alice"]
    header, payload, signature = good.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}{'AAAA' if not signature.endswith('AAAA') else 'BBBB'}"
    id_token = (await keycloak.token_response("alice", scope="openid"))["id_token"]
    wrong_audience = await keycloak.access_token("alice", client_id=NOAUD_CLIENT)
    unsigned = f"{header}.{payload}."
    bodies = set()
    for authorization in [
        "Basic YWxpY2U6c2VjcmV0",
        "Bearer",
        f"Bearer {tampered}",
        f"Bearer {id_token}",
        f"Bearer {wrong_audience}",
        f"Bearer {unsigned}",
    ]:
        response = await api.get("/db/notebooks", headers={"Authorization": authorization})
        assert response.status_code == 401, authorization[:30]
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        bodies.add(response.json()["detail"])
    assert len(bodies) == 1
    assert (await api.get("/db/notebooks", headers=bearer(good))).status_code == 200


async def test_an_expired_token_is_401(
    keycloak: LocalKeycloak, database_url: URL, service_specs: Sequence[ServiceSpec]
) -> None:
    strict = keycloak.auth_settings(oidc_leeway_seconds=0)
    async with app_client(service_specs, settings_for(database_url), strict) as api:
        # The app has started and fetched the realm's keys before the 2-second token is issued: its
        # lifetime is spent on the check alone, however slow a loaded machine starts the app.
        warm = await keycloak.access_token("alice")
        assert (await api.get("/db/notebooks", headers=bearer(warm))).status_code == 200
        short = await keycloak.access_token("alice", client_id=SHORTLIVED_CLIENT)
        assert (await api.get("/db/notebooks", headers=bearer(short))).status_code == 200
        expires = jwt.decode(short, options={"verify_signature": False})["exp"]
        await asyncio.sleep(max(0.0, expires - time.time()) + 1)
        assert (await api.get("/db/notebooks", headers=bearer(short))).status_code == 401


async def test_users_see_and_change_only_their_own_notebooks(
    api: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    alice, bob = bearer(tokens["alice"]), bearer(tokens["bob"])
    created = await api.post("/db/notebooks", json=notebook("alice"), headers=alice)
    assert created.status_code == 201
    notebook_id = created.json()["id"]
    await api.post(f"/db/parameters/bulk/{notebook_id}", json=[{"param_name": "n"}], headers=alice)
    parameter_id = (await api.get(f"/db/parameters/notebook/{notebook_id}", headers=alice)).json()[0]["id"]
    assert (await api.post("/db/notebooks", json=notebook("bob"), headers=bob)).status_code == 201

    # Acting in another's name is refused outright.
    spoof = await api.post("/db/notebooks", json=notebook("alice", "spoof"), headers=bob)
    assert spoof.status_code == 403
    assert spoof.json()["errors"][0] == {
        "field": "username",
        "rule": "owner",
        "message": "is 'alice', but you are signed in as 'bob'; only admins act for others",
    }
    assert (await api.get("/db/notebooks/user/alice", headers=bob)).status_code == 403
    # Another's records by id are as if they did not exist.
    for method, path, body in [
        ("GET", f"/db/notebooks/{notebook_id}", None),
        ("PUT", f"/db/notebooks/{notebook_id}", {"name": "taken over"}),
        ("DELETE", f"/db/notebooks/{notebook_id}", None),
        ("GET", f"/db/parameters/notebook/{notebook_id}", None),
        ("POST", f"/db/parameters/bulk/{notebook_id}", [{"param_name": "x"}]),
        ("GET", f"/db/parameters/{parameter_id}", None),
        ("PUT", f"/db/parameters/{parameter_id}", {"default_value": "x"}),
        ("DELETE", f"/db/parameters/{parameter_id}", None),
    ]:
        response = await api.request(method, path, json=body, headers=bob)
        assert response.status_code == 404, (method, path)
    # Lists are narrowed, not refused.
    assert [n["username"] for n in (await api.get("/db/notebooks", headers=bob)).json()] == ["bob"]
    assert (await api.get("/db/notebooks", params={"username": "alice"}, headers=bob)).json() == []
    # And alice's notebook is as she left it.
    mine = (await api.get(f"/db/notebooks/{notebook_id}", headers=alice)).json()
    assert mine["name"] == "forecast"
    assert [p["param_name"] for p in mine["parameters"]] == ["n"]


async def test_viewers_read_but_cannot_write_and_no_role_is_no_access(
    api: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    carol, erin = bearer(tokens["carol"]), bearer(tokens["erin"])
    assert (await api.get("/db/notebooks", headers=carol)).status_code == 200
    refused = await api.post("/db/notebooks", json=notebook("carol"), headers=carol)
    assert refused.status_code == 403
    assert "viewers can read" in refused.json()["detail"]
    assert (await api.get("/db/notebooks", headers=erin)).status_code == 403
    assert (await api.get("/db/notebooks", headers=bearer(tokens["dana"]))).headers["X-Total-Count"] == "0"


async def test_admins_see_everyone_and_only_services_report_runs(
    api: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    alice, bob, dana = bearer(tokens["alice"]), bearer(tokens["bob"]), bearer(tokens["dana"])
    service = bearer(tokens["service"])
    assert (await api.post("/internal/events", json=event(1, "alice"), headers=alice)).status_code == 403
    for execution_id, owner in [(1, "alice"), (2, "bob"), (3, "alice")]:
        reported = await api.post("/internal/events", json=event(execution_id, owner), headers=service)
        assert reported.json()["outcome"] == "applied"

    assert sorted(r["id"] for r in (await api.get("/db/executions", headers=alice)).json()) == [1, 3]
    assert [r["id"] for r in (await api.get("/db/executions", headers=bob)).json()] == [2]
    assert sorted(r["id"] for r in (await api.get("/db/executions", headers=dana)).json()) == [1, 2, 3]
    assert (await api.get("/db/executions/2", headers=alice)).status_code == 404
    assert (await api.get("/db/executions/2/results", headers=alice)).status_code == 404
    assert (await api.get("/db/executions/2", headers=dana)).json()["username"] == "bob"
    assert (await api.get("/db/executions/stats", headers=alice)).json()["total"] == 2
    assert (await api.get("/db/executions/stats", headers=dana)).json()["total"] == 3

    # An admin manages anyone's notebooks.
    created = await api.post("/db/notebooks", json=notebook("bob", "for-bob"), headers=dana)
    assert created.status_code == 201
    assert (await api.get("/db/notebooks/user/bob", headers=dana)).headers["X-Total-Count"] == "1"
    assert (await api.delete(f"/db/notebooks/{created.json()['id']}", headers=dana)).status_code == 204


async def test_rotated_keys_are_accepted_by_a_running_service(
    keycloak: LocalKeycloak, database_url: URL, tmp_path: Path
) -> None:
    """Keycloak's keys rotated through its admin API while a registry process runs: tokens signed with
    the new key are accepted without a restart, and those of the old key still are until they expire."""
    registry = start_service(
        "registry",
        database_url,
        tmp_path,
        NBP_AUTH="keycloak",
        NBP_OIDC_ISSUER=keycloak.issuer,
        NBP_OIDC_JWKS_URL=keycloak.jwks_url,
        # An unknown key id makes the service fetch the key set again, at most once a second here.
        NBP_OIDC_JWKS_MIN_REFRESH_SECONDS="1",
    )
    try:
        async with httpx.AsyncClient(base_url=registry.url) as api, keycloak.admin_api() as admin:
            old_token = await keycloak.access_token("alice")
            assert (await api.get("/db/notebooks", headers=bearer(old_token))).status_code == 200
            keys = (await admin.get("/keys")).json()["keys"]
            old_kid = jwt.get_unverified_header(old_token)["kid"]
            old = next(key for key in keys if key["kid"] == old_kid)
            async with key_provider(
                admin,
                name="rsa-rotated-for-a-service",
                providerId="rsa-generated",
                priority=str(int(old["providerPriority"]) + 100),
                keySize="2048",
                algorithm="RS256",
                active="true",
                enabled="true",
            ):
                new_token = await keycloak.access_token("alice")
                assert jwt.get_unverified_header(new_token)["kid"] != old_kid
                await asyncio.sleep(1.1)  # past the refetch interval since the first request
                assert (await api.get("/db/notebooks", headers=bearer(new_token))).status_code == 200
                assert (await api.get("/db/notebooks", headers=bearer(old_token))).status_code == 200
    finally:
        registry.stop()
