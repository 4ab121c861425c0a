"""Notebooks: the seed's endpoints, their filters, pagination and the constraints on them."""

import asyncio

import httpx

NOTEBOOK = {
    "name": "Quarterly forecast",
    "description": "Sales forecast",
    "file_path": "forecasts/quarterly.ipynb",
    "username": "alice",
    "tags": ["sales", "forecast"],
    "metadata": {"owner_team": "finance", "priority": 2},
}


async def create(client: httpx.AsyncClient, **changes: object) -> dict:
    response = await client.post("/db/notebooks", json={**NOTEBOOK, **changes})
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_answers_201_with_the_seed_fields(registry: httpx.AsyncClient) -> None:
    body = await create(registry)
    assert body["id"] >= 1
    for key in ("name", "description", "file_path", "username", "tags", "metadata"):
        assert body[key] == NOTEBOOK[key]
    assert body["created_at"] == body["updated_at"]
    assert body["created_at"].endswith("Z") or "+" in body["created_at"]


async def test_get_returns_the_notebook_with_its_parameters(registry: httpx.AsyncClient) -> None:
    notebook = await create(registry)
    await registry.post(
        f"/db/parameters/bulk/{notebook['id']}",
        json=[{"param_name": "alpha", "param_type": "float", "default_value": 0.5}],
    )
    body = (await registry.get(f"/db/notebooks/{notebook['id']}")).json()
    assert [p["param_name"] for p in body["parameters"]] == ["alpha"]
    assert body["parameters"][0]["default_value"] == 0.5


async def test_list_filters_by_username_tag_and_name_and_counts_in_a_header(
    registry: httpx.AsyncClient,
) -> None:
    await create(registry)
    await create(registry, name="Churn model", file_path="churn.ipynb", tags=["ml"])
    await create(registry, name="Forecast v2", file_path="f2.ipynb", username="bob", tags=["sales"])

    everything = await registry.get("/db/notebooks")
    assert everything.headers["X-Total-Count"] == "3"
    assert isinstance(everything.json(), list)

    by_user = await registry.get("/db/notebooks", params={"username": "alice"})
    assert {n["name"] for n in by_user.json()} == {"Quarterly forecast", "Churn model"}
    by_tag = await registry.get("/db/notebooks", params={"tag": "sales"})
    assert {n["name"] for n in by_tag.json()} == {"Quarterly forecast", "Forecast v2"}
    by_name = await registry.get("/db/notebooks", params={"name": "FORECAST"})
    assert by_name.headers["X-Total-Count"] == "2"
    literal = await registry.get("/db/notebooks", params={"name": "%"})
    assert literal.json() == []  # % is a character to look for, not a wildcard

    user_route = await registry.get("/db/notebooks/user/bob")
    assert [n["name"] for n in user_route.json()] == ["Forecast v2"]
    assert user_route.headers["X-Total-Count"] == "1"


async def test_pagination_pages_through_in_order(registry: httpx.AsyncClient) -> None:
    for i in range(5):
        await create(registry, name=f"nb {i}", file_path=f"nb{i}.ipynb")
    first = await registry.get("/db/notebooks", params={"limit": 2})
    second = await registry.get("/db/notebooks", params={"limit": 2, "offset": 2})
    beyond = await registry.get("/db/notebooks", params={"limit": 2, "offset": 10})
    assert [n["name"] for n in first.json()] == ["nb 0", "nb 1"]
    assert [n["name"] for n in second.json()] == ["nb 2", "nb 3"]
    assert beyond.json() == []
    assert beyond.headers["X-Total-Count"] == "5"


async def test_put_changes_only_what_is_sent_and_moves_updated_at(registry: httpx.AsyncClient) -> None:
    notebook = await create(registry)
    await asyncio.sleep(0.01)
    response = await registry.put(f"/db/notebooks/{notebook['id']}", json={"description": "new"})
    assert response.status_code == 200
    body = response.json()
    assert body["description"] == "new"
    assert body["name"] == NOTEBOOK["name"]
    assert body["tags"] == NOTEBOOK["tags"]
    assert body["updated_at"] > notebook["updated_at"]
    assert body["created_at"] == notebook["created_at"]


async def test_delete_takes_the_parameters_with_it(registry: httpx.AsyncClient) -> None:
    notebook = await create(registry)
    created = await registry.post(
        f"/db/parameters/bulk/{notebook['id']}", json=[{"param_name": "a"}, {"param_name": "b"}]
    )
    ids = [p["id"] for p in created.json()]
    assert (await registry.delete(f"/db/notebooks/{notebook['id']}")).status_code == 204
    assert (await registry.get(f"/db/notebooks/{notebook['id']}")).status_code == 404
    for parameter_id in ids:
        assert (await registry.get(f"/db/parameters/{parameter_id}")).status_code == 404
    assert (await registry.delete(f"/db/notebooks/{notebook['id']}")).status_code == 404


async def test_name_and_file_path_are_unique_per_user(registry: httpx.AsyncClient) -> None:
    await create(registry)
    same_name = await registry.post("/db/notebooks", json={**NOTEBOOK, "file_path": "other.ipynb"})
    assert same_name.status_code == 409
    assert same_name.json()["errors"][0] == {
        "field": "name",
        "rule": "unique",
        "message": "this user already has a notebook with that name",
    }
    same_path = await registry.post("/db/notebooks", json={**NOTEBOOK, "name": "Another"})
    assert same_path.status_code == 409
    assert same_path.json()["errors"][0]["field"] == "file_path"
    # Paths are relative to each user's folder: bob's forecasts/quarterly.ipynb is another file.
    other_user = await registry.post("/db/notebooks", json={**NOTEBOOK, "username": "bob"})
    assert other_user.status_code == 201, other_user.text
    assert (await registry.get("/db/notebooks")).headers["X-Total-Count"] == "2"


async def test_renaming_into_a_taken_name_is_409_and_changes_nothing(registry: httpx.AsyncClient) -> None:
    await create(registry)
    second = await create(registry, name="Second", file_path="second.ipynb")
    response = await registry.put(f"/db/notebooks/{second['id']}", json={"name": NOTEBOOK["name"]})
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "name"
    assert (await registry.get(f"/db/notebooks/{second['id']}")).json()["name"] == "Second"


async def test_unicode_names_round_trip(registry: httpx.AsyncClient) -> None:
    body = await create(
        registry,
        name="Prévision 📈 季度预测",
        username="zoë",
        file_path="données/prévision.ipynb",
        tags=["ünï"],
    )
    fetched = (await registry.get(f"/db/notebooks/{body['id']}")).json()
    assert fetched["name"] == "Prévision 📈 季度预测"
    assert fetched["file_path"] == "données/prévision.ipynb"
    by_user = await registry.get("/db/notebooks/user/zoë")
    assert by_user.headers["X-Total-Count"] == "1"
