"""Parameters: typed definitions whose defaults and rules are checked, single and in bulk."""

import httpx
import pytest


@pytest.fixture
async def notebook_id(registry: httpx.AsyncClient) -> int:
    response = await registry.post(
        "/db/notebooks", json={"name": "nb", "file_path": "nb.ipynb", "username": "alice"}
    )
    return int(response.json()["id"])


async def test_create_get_update_delete(registry: httpx.AsyncClient, notebook_id: int) -> None:
    created = await registry.post(
        "/db/parameters",
        json={
            "notebook_id": notebook_id,
            "param_name": "epochs",
            "param_type": "int",
            "default_value": 10,
            "description": "training epochs",
            "required": 1,
            "validation_rules": {"min": 1, "max": 100},
        },
    )
    assert created.status_code == 201, created.text
    parameter = created.json()
    assert parameter["required"] is True
    assert parameter["validation_rules"] == {"min": 1, "max": 100}

    fetched = await registry.get(f"/db/parameters/{parameter['id']}")
    assert fetched.json() == parameter

    updated = await registry.put(
        f"/db/parameters/{parameter['id']}", json={"default_value": 20, "required": 0}
    )
    assert updated.status_code == 200
    assert updated.json()["default_value"] == 20
    assert updated.json()["required"] is False
    assert updated.json()["param_type"] == "int"

    listed = await registry.get(f"/db/parameters/notebook/{notebook_id}")
    assert [p["param_name"] for p in listed.json()] == ["epochs"]

    assert (await registry.delete(f"/db/parameters/{parameter['id']}")).status_code == 204
    assert (await registry.get(f"/db/parameters/{parameter['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("definition", "field", "rule"),
    [
        ({"param_type": "int", "default_value": "ten"}, "default_value", "type"),
        ({"param_type": "int", "default_value": 0, "validation_rules": {"min": 1}}, "default_value", "min"),
        (
            {"param_type": "str", "default_value": "x", "validation_rules": {"choices": ["a"]}},
            "default_value",
            "choices",
        ),
        (
            {"param_type": "int", "validation_rules": {"min": 5, "max": 1}},
            "validation_rules.min",
            "min_gt_max",
        ),
        (
            {"param_type": "str", "validation_rules": {"pattern": "("}},
            "validation_rules.pattern",
            "invalid_regex",
        ),
        (
            {"param_type": "int", "validation_rules": {"choices": ["a"]}},
            "validation_rules.choices[0]",
            "rule_type",
        ),
        (
            {"param_type": "bool", "validation_rules": {"max": 1}},
            "validation_rules.max",
            "rule_not_applicable",
        ),
        (
            {"param_type": "int", "validation_rules": {"between": [1, 2]}},
            "validation_rules.between",
            "unknown_rule",
        ),
        ({"param_type": "complex"}, "param_type", "type_name"),
        ({"param_name": "class"}, "param_name", "value_error"),
        ({"param_name": "has space"}, "param_name", "value_error"),
        ({"required": "yes"}, "required", "bool_type"),
        ({"required": 2}, "required", "bool_type"),
    ],
)
async def test_definitions_that_make_no_sense_are_422_naming_field_and_rule(
    registry: httpx.AsyncClient, notebook_id: int, definition: dict, field: str, rule: str
) -> None:
    body = {"notebook_id": notebook_id, "param_name": "p", **definition}
    response = await registry.post("/db/parameters", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert {"field": field, "rule": rule} in [
        {"field": e["field"], "rule": e["rule"]} for e in error["errors"]
    ]
    assert field.split(".")[0].split("[")[0] in error["detail"]
    assert (await registry.get(f"/db/parameters/notebook/{notebook_id}")).json() == []


async def test_update_must_leave_a_consistent_definition(
    registry: httpx.AsyncClient, notebook_id: int
) -> None:
    created = await registry.post(
        "/db/parameters",
        json={"notebook_id": notebook_id, "param_name": "n", "param_type": "int", "default_value": 5},
    )
    parameter_id = created.json()["id"]
    # Changing the type alone would leave a default of the wrong type.
    response = await registry.put(f"/db/parameters/{parameter_id}", json={"param_type": "str"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "default_value"
    assert (await registry.get(f"/db/parameters/{parameter_id}")).json()["param_type"] == "int"


async def test_every_type_stores_its_default(registry: httpx.AsyncClient, notebook_id: int) -> None:
    defaults = {
        "str": "text",
        "int": 3,
        "float": 2.5,
        "bool": True,
        "list": [1, "two"],
        "dict": {"k": [1]},
        "date": "2024-05-01",
        "datetime": "2024-05-01T12:00:00+00:00",
    }
    items = [{"param_name": f"p_{t}", "param_type": t, "default_value": v} for t, v in defaults.items()]
    response = await registry.post(f"/db/parameters/bulk/{notebook_id}", json=items)
    assert response.status_code == 201, response.text
    stored = {p["param_type"]: p["default_value"] for p in response.json()}
    assert stored == defaults


async def test_bulk_with_one_bad_item_stores_nothing(registry: httpx.AsyncClient, notebook_id: int) -> None:
    items = [
        {"param_name": "good", "param_type": "int", "default_value": 1},
        {"param_name": "bad", "param_type": "int", "default_value": "x"},
        {"param_name": "also_good", "param_type": "str"},
    ]
    response = await registry.post(f"/db/parameters/bulk/{notebook_id}", json=items)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "[1].default_value"
    assert (await registry.get(f"/db/parameters/notebook/{notebook_id}")).json() == []


async def test_bulk_with_a_taken_or_repeated_name_is_409_and_stores_nothing(
    registry: httpx.AsyncClient, notebook_id: int
) -> None:
    await registry.post("/db/parameters", json={"notebook_id": notebook_id, "param_name": "taken"})
    taken = await registry.post(
        f"/db/parameters/bulk/{notebook_id}", json=[{"param_name": "fresh"}, {"param_name": "taken"}]
    )
    assert taken.status_code == 409
    assert taken.json()["errors"][0]["field"] == "param_name"
    repeated = await registry.post(
        f"/db/parameters/bulk/{notebook_id}", json=[{"param_name": "x"}, {"param_name": "x"}]
    )
    assert repeated.status_code == 409
    assert repeated.json()["errors"][0]["field"] == "[1].param_name"
    names = [p["param_name"] for p in (await registry.get(f"/db/parameters/notebook/{notebook_id}")).json()]
    assert names == ["taken"]


async def test_parameters_of_an_unknown_notebook_are_404(registry: httpx.AsyncClient) -> None:
    single = await registry.post("/db/parameters", json={"notebook_id": 999, "param_name": "p"})
    assert single.status_code == 404
    assert single.json()["errors"][0]["field"] == "notebook_id"
    assert (await registry.post("/db/parameters/bulk/999", json=[{"param_name": "p"}])).status_code == 404
    assert (await registry.get("/db/parameters/notebook/999")).status_code == 404
