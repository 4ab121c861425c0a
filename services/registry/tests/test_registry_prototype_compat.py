"""The prototype's clients keep working: its requests, exactly as it sent them, against the registry.

The prototype registered absolute paths under the user's home, used its own parameter type names, sent
``skip`` for ``offset`` and repeated the notebook's id in every bulk item."""

import httpx
import pytest

PROTOTYPE_NOTEBOOK = {
    "name": "sales_analysis",
    "description": "Monthly sales analysis",
    "file_path": "/home/testuser/notebooks/sales_analysis.ipynb",
    "username": "testuser",
    "tags": ["sales", "monthly"],
    "metadata": {"author": "testuser", "version": "1.0"},
}


async def register(registry: httpx.AsyncClient, **changes: object) -> dict:
    response = await registry.post("/db/notebooks", json={**PROTOTYPE_NOTEBOOK, **changes})
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_home_path_is_stored_relative_to_the_users_folder(registry: httpx.AsyncClient) -> None:
    notebook = await register(registry)
    assert notebook["file_path"] == "notebooks/sales_analysis.ipynb"
    fetched = (await registry.get(f"/db/notebooks/{notebook['id']}")).json()
    assert fetched["file_path"] == "notebooks/sales_analysis.ipynb"
    # The same file, named relative, is the same registration.
    again = await registry.post(
        "/db/notebooks",
        json={**PROTOTYPE_NOTEBOOK, "name": "again", "file_path": "notebooks/sales_analysis.ipynb"},
    )
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "file_path"


async def test_updating_file_path_takes_a_home_path_too(registry: httpx.AsyncClient) -> None:
    notebook = await register(registry)
    response = await registry.put(
        f"/db/notebooks/{notebook['id']}", json={"file_path": "/home/testuser/moved/sales.ipynb"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["file_path"] == "moved/sales.ipynb"
    refused = await registry.put(
        f"/db/notebooks/{notebook['id']}", json={"file_path": "/home/other/sales.ipynb"}
    )
    assert refused.status_code == 403
    assert (refused.json()["errors"][0]["field"], refused.json()["errors"][0]["rule"]) == (
        "file_path",
        "own_home",
    )


async def test_another_users_home_is_403_naming_field_and_rule(registry: httpx.AsyncClient) -> None:
    # Even for an admin (NBP_AUTH=none makes every caller one): alice's notebook is never bob's file.
    response = await registry.post(
        "/db/notebooks", json={**PROTOTYPE_NOTEBOOK, "file_path": "/home/bob/notebooks/x.ipynb"}
    )
    assert response.status_code == 403
    body = response.json()
    assert body["errors"] == [
        {
            "field": "file_path",
            "rule": "own_home",
            "message": "is under /home/bob/, another user's home; it must be in testuser's",
        }
    ]
    assert (await registry.get("/db/notebooks")).headers["X-Total-Count"] == "0"


async def test_any_other_absolute_path_is_422_naming_the_rule(registry: httpx.AsyncClient) -> None:
    response = await registry.post(
        "/db/notebooks", json={**PROTOTYPE_NOTEBOOK, "file_path": "/opt/notebooks/x.ipynb"}
    )
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert (error["field"], error["rule"]) == ("file_path", "relative_path")
    assert "/home/<username>/" in error["message"]


async def test_two_users_register_the_same_relative_path(registry: httpx.AsyncClient) -> None:
    alice = await register(registry, username="alice", file_path="/home/alice/shared/report.ipynb")
    bob = await register(registry, username="bob", file_path="shared/report.ipynb")
    assert alice["file_path"] == bob["file_path"] == "shared/report.ipynb"
    assert alice["id"] != bob["id"]


@pytest.mark.parametrize(
    ("prototype", "ours", "default"),
    [
        ("string", "str", "north"),
        ("integer", "int", 10),
        ("float", "float", 0.5),
        ("boolean", "bool", True),
        ("json", "dict", {"a": 1}),
        ("list", "list", [1, 2]),
    ],
)
async def test_the_prototypes_type_names_are_stored_as_ours(
    registry: httpx.AsyncClient, prototype: str, ours: str, default: object
) -> None:
    notebook = await register(registry)
    created = await registry.post(
        "/db/parameters",
        json={
            "notebook_id": notebook["id"],
            "param_name": "value",
            "param_type": prototype,
            "default_value": default,
            "description": "a value",
            "required": 0,
            "validation_rules": None,
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["param_type"] == ours
    parameter_id = created.json()["id"]
    assert (await registry.get(f"/db/parameters/{parameter_id}")).json()["param_type"] == ours
    updated = await registry.put(f"/db/parameters/{parameter_id}", json={"param_type": prototype})
    assert updated.status_code == 200, updated.text
    assert updated.json()["param_type"] == ours


async def test_a_type_name_that_is_neither_is_422_listing_both(registry: httpx.AsyncClient) -> None:
    notebook = await register(registry)
    response = await registry.post(
        "/db/parameters", json={"notebook_id": notebook["id"], "param_name": "x", "param_type": "number"}
    )
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert (error["field"], error["rule"]) == ("param_type", "type_name")
    assert "str int float bool list dict date datetime" in error["message"]
    assert "string integer float boolean json list" in error["message"]


async def test_bulk_items_carrying_the_notebook_id(registry: httpx.AsyncClient) -> None:
    notebook = await register(registry)
    items = [
        {"notebook_id": notebook["id"], "param_name": "start_date", "param_type": "string",
         "default_value": "2024-01-01", "description": "Start date", "required": 1},
        {"notebook_id": notebook["id"], "param_name": "threshold", "param_type": "integer",
         "default_value": 100, "description": "Threshold", "required": 0},
    ]  # fmt: skip
    response = await registry.post(f"/db/parameters/bulk/{notebook['id']}", json=items)
    assert response.status_code == 201, response.text
    assert [(p["param_name"], p["param_type"], p["required"]) for p in response.json()] == [
        ("start_date", "str", True),
        ("threshold", "int", False),
    ]


async def test_a_bulk_item_naming_another_notebook_is_422_and_stores_nothing(
    registry: httpx.AsyncClient,
) -> None:
    notebook = await register(registry)
    other = await register(registry, name="other", file_path="other.ipynb")
    items = [
        {"notebook_id": notebook["id"], "param_name": "a", "param_type": "integer"},
        {"notebook_id": other["id"], "param_name": "b", "param_type": "integer"},
    ]
    response = await registry.post(f"/db/parameters/bulk/{notebook['id']}", json=items)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "[1].notebook_id",
            "rule": "matches_path",
            "message": f"is {other['id']}, but the path names notebook {notebook['id']}",
        }
    ]
    assert (await registry.get(f"/db/parameters/notebook/{notebook['id']}")).json() == []


async def test_skip_is_offset(registry: httpx.AsyncClient) -> None:
    for index in range(4):
        await register(registry, name=f"nb{index}", file_path=f"nb{index}.ipynb")
    by_offset = (await registry.get("/db/notebooks", params={"offset": 2, "limit": 10})).json()
    by_skip = (await registry.get("/db/notebooks", params={"skip": 2, "limit": 10})).json()
    assert [n["name"] for n in by_skip] == [n["name"] for n in by_offset] == ["nb2", "nb3"]
    user = await registry.get("/db/notebooks/user/testuser", params={"skip": 3, "limit": 10})
    assert [n["name"] for n in user.json()] == ["nb3"]
    both = await registry.get("/db/notebooks", params={"skip": 1, "offset": 2})
    assert both.status_code == 422
    assert (both.json()["errors"][0]["field"], both.json()["errors"][0]["rule"]) == (
        "query.skip",
        "same_as_offset",
    )


async def test_health_answers_as_the_prototype_did(registry: httpx.AsyncClient) -> None:
    body = (await registry.get("/health")).json()
    assert body["status"] == "healthy"
    assert body["checks"] == {"database": "ok"}
    assert "version" in body
