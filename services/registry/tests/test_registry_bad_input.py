"""Bad input: a clear 4xx in the shared error shape that names the field and the rule, never a 500,
and nothing already stored is lost."""

import httpx
import pytest

GOOD = {"name": "nb", "file_path": "nb.ipynb", "username": "alice"}


def assert_error_shape(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail", "code", "status", "errors", "request_id"}
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def fields_and_rules(body: dict) -> set[tuple[str, str]]:
    return {(e["field"], e["rule"]) for e in body["errors"] or []}


async def test_malformed_json_is_422(registry: httpx.AsyncClient) -> None:
    response = await registry.post(
        "/db/notebooks", content=b'{"name": "nb", ', headers={"content-type": "application/json"}
    )
    body = assert_error_shape(response, 422)
    assert ("body", "json_invalid") in {(e["field"].split("[")[0], e["rule"]) for e in body["errors"]}


async def test_missing_fields_are_each_named(registry: httpx.AsyncClient) -> None:
    body = assert_error_shape(await registry.post("/db/notebooks", json={"name": "nb"}), 422)
    assert {("file_path", "missing"), ("username", "missing")} <= fields_and_rules(body)


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"name": 5}, "name", "string_type"),
        ({"tags": "sales"}, "tags", "list_type"),
        ({"tags": [1]}, "tags[0]", "string_type"),
        ({"metadata": [1, 2]}, "metadata", "dict_type"),
        ({"name": ""}, "name", "string_too_short"),
        ({"name": "x" * 256}, "name", "string_too_long"),
        ({"username": "u" * 256}, "username", "string_too_long"),
        ({"file_path": "a/" * 600 + "b.ipynb"}, "file_path", "string_too_long"),
        ({"username": "../etc"}, "username", "string_pattern_mismatch"),
        ({"file_path": "../other/nb.ipynb"}, "file_path", "inside_user_folder"),
        ({"file_path": "/etc/nb.ipynb"}, "file_path", "relative_path"),
        ({"file_path": "notes.txt"}, "file_path", "value_error"),
        ({"name": "nul\x00byte"}, "name", "value_error"),
        ({"metadata": {"k": "nul\x00"}}, "metadata", "value_error"),
        ({"surprise": 1}, "surprise", "extra_forbidden"),
    ],
)
async def test_wrong_values_are_422_naming_field_and_rule(
    registry: httpx.AsyncClient, change: dict, field: str, rule: str
) -> None:
    body = assert_error_shape(await registry.post("/db/notebooks", json={**GOOD, **change}), 422)
    assert (field, rule) in fields_and_rules(body)
    assert (await registry.get("/db/notebooks")).headers["X-Total-Count"] == "0"


async def test_a_failed_update_loses_nothing(registry: httpx.AsyncClient) -> None:
    created = (await registry.post("/db/notebooks", json=GOOD)).json()
    for change in ({"name": None}, {"name": "x" * 300}, {"tags": [None]}, {"file_path": "../x.ipynb"}):
        assert_error_shape(await registry.put(f"/db/notebooks/{created['id']}", json=change), 422)
    assert (await registry.get(f"/db/notebooks/{created['id']}")).json()["name"] == "nb"


@pytest.mark.parametrize(
    "path",
    [
        "/db/notebooks/999",
        "/db/parameters/999",
        "/db/parameters/notebook/999",
        "/db/notebooks/9223372036854775807",
    ],
)
async def test_unknown_ids_are_404(registry: httpx.AsyncClient, path: str) -> None:
    body = assert_error_shape(await registry.get(path), 404)
    assert "999" in body["detail"] or "9223372036854775807" in body["detail"]


@pytest.mark.parametrize("raw_id", ["abc", "1.5", "0", "-3", "9223372036854775808", "1e3"])
async def test_ids_that_are_not_positive_64_bit_integers_are_422(
    registry: httpx.AsyncClient, raw_id: str
) -> None:
    for path in (f"/db/notebooks/{raw_id}", f"/db/parameters/{raw_id}"):
        body = assert_error_shape(await registry.get(path), 422)
        assert body["errors"][0]["field"] == "path.id"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": -1}, "query.limit"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 10**12}, "query.limit"),
        ({"limit": "ten"}, "query.limit"),
        ({"offset": -5}, "query.offset"),
        ({"offset": 10**20}, "query.offset"),
    ],
)
async def test_bad_limit_or_offset_is_422(registry: httpx.AsyncClient, query: dict, field: str) -> None:
    body = assert_error_shape(await registry.get("/db/notebooks", params=query), 422)
    assert body["errors"][0]["field"] == field


async def test_unknown_route_and_method_use_the_shared_shape(registry: httpx.AsyncClient) -> None:
    assert assert_error_shape(await registry.get("/db/nothing-here"), 404)["code"] == "not_found"
    assert assert_error_shape(await registry.patch("/db/notebooks"), 405)["code"] == "method_not_allowed"


async def test_a_bulk_body_that_is_not_a_list_is_422(registry: httpx.AsyncClient) -> None:
    created = (await registry.post("/db/notebooks", json=GOOD)).json()
    assert_error_shape(
        await registry.post(f"/db/parameters/bulk/{created['id']}", json={"param_name": "x"}), 422
    )
    assert_error_shape(await registry.post(f"/db/parameters/bulk/{created['id']}", json=[]), 422)
