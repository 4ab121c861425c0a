"""The prototype's requests to the executor, exactly as it sent them: bodies without ``username``,
``params``, absolute paths in the user's home; the listing in its shape; synchronous answers that come
only once the history holds the ended run; and parameter inference from a notebook's parameters cell."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.executor import Platform, field_rules

pytestmark = pytest.mark.timeout(180)

Notebook = Callable[..., Path]


async def recorded_at_once(platform: Platform, run_id: int) -> dict[str, Any]:
    # No polling: the synchronous answer promised the history already has it.
    response = await platform.client.get(f"/db/executions/{run_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_run_notebook_as_the_prototype_sent_it(platform: Platform, notebook: Notebook) -> None:
    notebook(
        platform.user("proto") / "notebooks" / "sales.ipynb",
        "import nbp\nnbp.record('total', units * 2)",
        parameters="units = 1",
    )
    response = await platform.client.post(
        "/run-notebook",
        json={
            "input_path": "/home/proto/notebooks/sales.ipynb",
            "output_path": "/home/proto/outputs/sales_output.ipynb",
            "params": {"units": 21},
        },
    )
    assert response.status_code == 200, response.text
    run = response.json()
    assert (run["status"], run["username"]) == ("completed", "proto")
    assert (run["input_path"], run["output_path"]) == ("notebooks/sales.ipynb", "outputs/sales_output.ipynb")
    assert (platform.user("proto") / "outputs" / "sales_output.ipynb").is_file()
    record = await recorded_at_once(platform, run["id"])
    assert record["status"] == "completed"


async def test_execute_notebook_and_execute_with_input_path(platform: Platform, notebook: Notebook) -> None:
    notebook(platform.user("proto2") / "a.ipynb", "import nbp\nnbp.record('x', x)", parameters="x = 0")
    full = await platform.client.post(
        "/execute-notebook",
        json={
            "input_path": "/home/proto2/a.ipynb",
            "output_path": "/home/proto2/a_out.ipynb",
            "params": {"x": 3},
        },
    )
    assert full.status_code == 200, full.text
    assert full.json()["output_path"] == "a_out.ipynb"
    assert (await recorded_at_once(platform, full.json()["id"]))["status"] == "completed"

    simple = await platform.client.post(
        "/execute", json={"input_path": "/home/proto2/a.ipynb", "params": {"x": 4}}
    )
    assert simple.status_code == 200, simple.text
    run = simple.json()
    assert (run["status"], run["username"], run["results"][0]["value_numeric"]) == (
        "completed",
        "proto2",
        4.0,
    )
    assert (await recorded_at_once(platform, run["id"]))["status"] == "completed"


async def test_the_prototypes_paths_are_refused_naming_field_and_rule(
    platform: Platform, notebook: Notebook
) -> None:
    notebook(platform.user("owner") / "n.ipynb", "x = 1")
    before = await platform.job_count()
    other_home = await platform.client.post(
        "/execute", json={"username": "intruder", "input_path": "/home/owner/n.ipynb"}
    )
    assert other_home.status_code == 403
    assert field_rules(other_home.json()) == {"notebook_path": "own_home"}
    elsewhere = await platform.client.post("/run-notebook", json={"input_path": "/srv/data/n.ipynb"})
    assert elsewhere.status_code == 422
    assert field_rules(elsewhere.json()) == {"input_path": "relative_path"}
    assert "/home/<username>/" in elsewhere.json()["errors"][0]["message"]
    output_elsewhere = await platform.client.post(
        "/run-notebook", json={"input_path": "/home/owner/n.ipynb", "output_path": "/home/victim/x.ipynb"}
    )
    assert output_elsewhere.status_code == 403
    assert field_rules(output_elsewhere.json()) == {"output_path": "own_home"}
    assert await platform.job_count() == before


async def test_list_notebooks_in_the_prototypes_shape(platform: Platform, notebook: Notebook) -> None:
    notebook(platform.user("lister2") / "reports" / "q3.ipynb", "x = 1")
    body = (await platform.client.get("/list-notebooks/lister2")).json()
    assert set(body) == {"username", "user_home", "notebook_count", "notebooks"}
    assert (body["username"], body["user_home"], body["notebook_count"]) == ("lister2", "/home/lister2", 1)
    (item,) = body["notebooks"]
    assert set(item) == {"name", "path", "relative_path", "size", "modified"}
    assert (item["name"], item["path"], item["relative_path"]) == (
        "q3.ipynb",
        "/home/lister2/reports/q3.ipynb",
        "reports/q3.ipynb",
    )


async def test_parameters_are_inferred_from_the_parameters_cell(
    platform: Platform, notebook: Notebook
) -> None:
    notebook(
        platform.user("inferer") / "model.ipynb",
        "print(alpha)",
        parameters=(
            "alpha = 0.5  # learning rate\n"
            "epochs: int = 10  # passes over the data\n"
            "region = 'north'\n"
            "layers = [64, 32]\n"
            "verbose = False"
        ),
    )
    response = await platform.client.get(
        "/list-notebooks/inferer/parameters", params={"path": "/home/inferer/model.ipynb"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["path"], body["has_parameters_cell"]) == ("model.ipynb", True)
    assert [
        (p["param_name"], p["param_type"], p["default_value"], p["description"]) for p in body["parameters"]
    ] == [
        ("alpha", "float", 0.5, "learning rate"),
        ("epochs", "int", 10, "passes over the data"),
        ("region", "str", "north", None),
        ("layers", "list", [64, 32], None),
        ("verbose", "bool", False, None),
    ]
    # What inference proposes, the registry accepts as it is.
    created = await platform.client.post(
        "/db/notebooks", json={"name": "model", "file_path": "model.ipynb", "username": "inferer"}
    )
    stored = await platform.client.post(
        f"/db/parameters/bulk/{created.json()['id']}", json=body["parameters"]
    )
    assert stored.status_code == 201, stored.text

    notebook(platform.user("inferer") / "plain.ipynb", "x = 1")
    plain = (
        await platform.client.get("/list-notebooks/inferer/parameters", params={"path": "plain.ipynb"})
    ).json()
    assert (plain["has_parameters_cell"], plain["parameters"]) == (False, [])
    missing = await platform.client.get("/list-notebooks/inferer/parameters", params={"path": "none.ipynb"})
    assert missing.status_code == 404
    refused = await platform.client.get(
        "/list-notebooks/inferer/parameters", params={"path": "/home/x/a.ipynb"}
    )
    assert refused.status_code == 403
    assert field_rules(refused.json()) == {"path": "own_home"}
