"""The executor through its HTTP API, with the registry and history served beside it (one app on a
real port, as ``make dev``), real PostgreSQL and real kernels."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.executor import Platform, field_rules

pytestmark = pytest.mark.timeout(120)

Notebook = Callable[..., Path]


# --- Running ------------------------------------------------------------------------------------


async def test_execute_with_seed_short_names_records_results_in_history(
    platform: Platform, notebook: Notebook
) -> None:
    folder = platform.user("ann")
    notebook(folder / "hello.ipynb", "import nbp\nnbp.record('answer', x * 2)", parameters="x = 1")
    response = await platform.client.post(
        "/execute", json={"user": "ann", "path": "hello.ipynb", "params": {"x": 21}}
    )
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "completed"
    assert run["results"] == [{"name": "answer", "value_numeric": 42.0, "value_json": None}]
    assert run["has_parameters_cell"] is True
    assert run["output_path"].startswith("outputs/hello-")
    assert run["output_path"].endswith(f"-{run['id']}.ipynb")
    assert (folder / run["output_path"]).is_file()
    assert run["progress"] == {"cells_done": 2, "cells_total": 2, "current_cell": None}

    assert run["parameters_used"] == run["parameters"] == {"x": 21}
    record = await platform.history(run["id"], "completed")
    assert record["parameters_used"] == record["parameters"] == {"x": 21}
    assert record["execution_time_seconds"] == run["execution_time_seconds"] == run["duration_seconds"]
    assert record["worker"] == run["worker"]
    assert record["input_sha256"] == run["input_sha256"]
    results = (await platform.client.get(f"/db/executions/{run['id']}/results")).json()
    assert [(r["name"], r["value_numeric"]) for r in results] == [("answer", 42.0)]


async def test_registered_notebook_gets_defaults_overlaid_by_the_request(
    platform: Platform, notebook: Notebook
) -> None:
    folder = platform.user("reg")
    notebook(
        folder / "model.ipynb",
        "import nbp\nnbp.record('alpha', alpha)\nnbp.record('label', label)\nnbp.record('cfg', cfg)",
        parameters="alpha = 0.0\nlabel = 'none'\ncfg = {}",
    )
    notebook_id = await platform.register(
        "reg",
        "model.ipynb",
        [
            {"param_name": "alpha", "param_type": "float", "default_value": 0.5},
            {"param_name": "label", "param_type": "str", "default_value": "base"},
            {"param_name": "cfg", "param_type": "dict", "default_value": {"k": [1, 2]}},
        ],
    )
    response = await platform.client.post(
        "/execute-notebook", json={"notebook_id": notebook_id, "parameters": {"label": "tuned"}}
    )
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "completed", run
    assert run["notebook_id"] == notebook_id
    assert run["notebook_name"] == "reg-model.ipynb"
    assert run["parameters_used"] == {"alpha": 0.5, "label": "tuned", "cfg": {"k": [1, 2]}}
    values = {
        r["name"]: r["value_numeric"] if r["value_numeric"] is not None else r["value_json"]
        for r in run["results"]
    }
    assert values == {"alpha": 0.5, "label": "tuned", "cfg": {"k": [1, 2]}}

    # A run by path of a registered notebook is checked against its definitions too.
    response = await platform.client.post(
        "/execute", json={"username": "reg", "notebook_path": "model.ipynb", "parameters": {"alpha": "x"}}
    )
    assert response.status_code == 422
    assert field_rules(response.json()) == {"parameters.alpha": "type"}


async def test_numbers_beyond_the_records_bounds_are_recorded_exactly_as_json(
    platform: Platform, notebook: Notebook
) -> None:
    # 10**400 is valid JSON but no float; 1e308 is a float whose daily sum over two runs of one notebook
    # overflows PostgreSQL's float8. Both are kept exactly in value_json and every run's ending arrives.
    folder = platform.user("big")
    notebook(
        folder / "big.ipynb",
        "import nbp\nnbp.record('huge', -10**400)\nnbp.record('large', 1e308)\nnbp.record('fine', 1e100)",
    )
    expected = {
        "huge": (None, -(10**400)),
        "large": (None, 10**308),  # jsonb keeps the decimal the JSON 1e+308 denotes, read back an int
        "fine": (1e100, None),
    }
    for _ in range(2):
        response = await platform.client.post(
            "/execute", json={"username": "big", "notebook_path": "big.ipynb", "parameters": {}}
        )
        run = response.json()
        assert run["status"] == "completed", run
        record = await platform.history(run["id"], "completed")
        for results in (run["results"], record["results"]):
            assert {r["name"]: (r["value_numeric"], r["value_json"]) for r in results} == expected


async def test_notebook_without_parameters_cell_still_runs(platform: Platform, notebook: Notebook) -> None:
    folder = platform.user("noparam")
    notebook(folder / "plain.ipynb", "import nbp\nnbp.record('n', n + 1)")
    response = await platform.client.post(
        "/execute", json={"username": "noparam", "notebook_path": "plain.ipynb", "parameters": {"n": 41}}
    )
    run = response.json()
    assert run["status"] == "completed", run
    assert run["has_parameters_cell"] is False
    assert run["results"][0]["value_numeric"] == 42.0
    assert (await platform.history(run["id"], "completed"))["has_parameters_cell"] is False


async def test_run_notebook_writes_the_requested_output_and_serves_it(
    platform: Platform, notebook: Notebook
) -> None:
    folder = platform.user("out")
    notebook(folder / "nb" / "report.ipynb", "print('hello from the report')")
    response = await platform.client.post(
        "/run-notebook",
        json={"username": "out", "input_path": "nb/report.ipynb", "output_path": "reports/r1.ipynb"},
    )
    run = response.json()
    assert run["status"] == "completed", run
    assert run["output_path"] == "reports/r1.ipynb"
    written = json.loads((folder / "reports" / "r1.ipynb").read_text())
    assert "hello from the report" in json.dumps(written["cells"])

    as_json = await platform.client.get(f"/executions/{run['id']}/output")
    assert as_json.status_code == 200
    assert as_json.json()["metadata"]["papermill"]["output_path"].endswith("reports/r1.ipynb")
    as_html = await platform.client.get(f"/executions/{run['id']}/output", params={"format": "html"})
    assert as_html.status_code == 200
    assert as_html.headers["content-type"].startswith("text/html")
    assert "hello from the report" in as_html.text


async def test_executions_resource_location_progress_and_active_list(
    platform: Platform, notebook: Notebook
) -> None:
    folder = platform.user("prog")
    notebook(folder / "slow.ipynb", "a = 1", "import time\ntime.sleep(2.5)", "b = 2")
    response = await platform.client.post(
        "/executions", json={"username": "prog", "notebook_path": "slow.ipynb"}
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["id"]
    assert response.headers["location"] == f"/executions/{run_id}"

    deadline = asyncio.get_running_loop().time() + 30
    seen: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        state = (await platform.client.get(f"/executions/{run_id}")).json()
        if state["status"] == "running" and state["progress"]["current_cell"] == 1:
            seen = state
            break
        await asyncio.sleep(0.1)
    assert seen, "never saw the run inside its second cell"
    assert seen["progress"]["cells_done"] == 1
    assert seen["progress"]["cells_total"] == 3
    listed = (await platform.client.get("/executions", params={"username": "prog"})).json()
    assert [r["id"] for r in listed] == [run_id]
    assert (await platform.history(run_id, "running"))["status"] == "running"

    done = await platform.wait(run_id)
    assert done["status"] == "completed"
    assert done["progress"]["cells_done"] == 3
    assert (await platform.client.get("/executions", params={"username": "prog"})).json() == []


async def test_idempotency_key_returns_the_first_run(platform: Platform, notebook: Notebook) -> None:
    notebook(platform.user("idem") / "once.ipynb", "x = 1")
    body = {"username": "idem", "notebook_path": "once.ipynb"}
    headers = {"Idempotency-Key": "order-42"}
    first = await platform.client.post("/executions", json=body, headers=headers)
    again = await platform.client.post("/executions", json=body, headers=headers)
    other = await platform.client.post("/executions", json=body, headers={"Idempotency-Key": "order-43"})
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert other.json()["id"] != first.json()["id"]
    await platform.wait(first.json()["id"])
    await platform.wait(other.json()["id"])


async def test_wait_false_answers_202_at_once(platform: Platform, notebook: Notebook) -> None:
    notebook(platform.user("nowait") / "n.ipynb", "import time\ntime.sleep(1)")
    response = await platform.client.post(
        "/execute", params={"wait": "false"}, json={"username": "nowait", "notebook_path": "n.ipynb"}
    )
    assert response.status_code == 202
    assert response.json()["status"] in ("queued", "running")
    assert (await platform.wait(response.json()["id"]))["status"] == "completed"


async def test_each_run_gets_a_fresh_kernel(platform: Platform, notebook: Notebook) -> None:
    notebook(
        platform.user("fresh") / "pid.ipynb",
        "import os, nbp\nnbp.record('pid', int(os.readlink('/proc/self')))\nleak = 1",
    )
    notebook(platform.user("fresh") / "leak.ipynb", "import nbp\nnbp.record('leaked', 'leak' in globals())")
    pids = set()
    for _ in range(3):
        run = (
            await platform.client.post("/execute", json={"username": "fresh", "notebook_path": "pid.ipynb"})
        ).json()
        pids.add(run["results"][0]["value_numeric"])
    assert len(pids) == 3
    run = (
        await platform.client.post("/execute", json={"username": "fresh", "notebook_path": "leak.ipynb"})
    ).json()
    assert run["results"][0]["value_json"] is False


# --- How runs end ---------------------------------------------------------------------------------


async def test_cell_error_fails_with_the_cell_and_still_writes_the_output(
    platform: Platform, notebook: Notebook
) -> None:
    folder = platform.user("err")
    notebook(folder / "boom.ipynb", "x = 1", "y = x + 1\nraise ValueError(f'bad value {y}')", "z = 3")
    run = (
        await platform.client.post("/execute", json={"username": "err", "notebook_path": "boom.ipynb"})
    ).json()
    assert run["status"] == "failed"
    assert run["error"]["cell_index"] == 1
    assert run["error"]["ename"] == "ValueError"
    assert run["error"]["evalue"] == "bad value 2"
    assert "raise ValueError" in run["error"]["cell_source"]
    assert "ValueError" in run["error"]["traceback"]
    assert "ValueError" in run["error_message"]
    output = json.loads((folder / run["output_path"]).read_text())
    assert any(o.get("ename") == "ValueError" for c in output["cells"] for o in c.get("outputs", []))
    record = await platform.history(run["id"], "failed")
    assert record["error"]["ename"] == "ValueError"
    assert record["error"]["cell_index"] == 1


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("import os\nos._exit(3)", "kernel died: the kernel process exited with code 3"),
        # What the out-of-memory killer does.
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "kernel died: killed by SIGKILL"),
    ],
    ids=["exit", "sigkill"],
)
async def test_kernel_death_fails_with_the_reason(
    platform: Platform, notebook: Notebook, source: str, reason: str
) -> None:
    notebook(platform.user("dead") / "exit.ipynb", "a = 1", source, "never = 1")
    response = await platform.client.post(
        "/execute", json={"username": "dead", "notebook_path": "exit.ipynb"}
    )
    run = response.json()
    assert run["status"] == "failed"
    assert run["error_message"].startswith(reason), run["error_message"]
    assert run["error"]["cell_index"] == 1
    assert (await platform.history(run["id"], "failed"))["error_message"] == run["error_message"]


async def test_cancel_a_queued_run_ends_it_at_once(platform: Platform, notebook: Notebook) -> None:
    notebook(platform.user("queue") / "hold.ipynb", "import time\ntime.sleep(60)")
    body = {"username": "queue", "notebook_path": "hold.ipynb"}
    busy = [(await platform.client.post("/executions", json=body)).json()["id"] for _ in range(2)]
    for run_id in busy:
        await platform.wait_status(run_id, "running")
    queued = (await platform.client.post("/executions", json=body)).json()["id"]
    assert (await platform.client.get(f"/executions/{queued}")).json()["status"] == "queued"
    response = await platform.client.post(f"/executions/{queued}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert response.json()["error_message"] == "cancelled before it started"
    # A queued run whose file changes before it starts records the hash of what it ran.
    edited = notebook(platform.user("queue") / "edited.ipynb", "x = 1")
    submitted = (
        await platform.client.post("/executions", json={**body, "notebook_path": "edited.ipynb"})
    ).json()
    notebook(edited, "x = 2")
    for run_id in busy:
        await platform.client.post(f"/executions/{run_id}/cancel")
    for run_id in [*busy, queued]:
        assert (await platform.wait(run_id))["status"] == "cancelled"
    assert (await platform.history(queued, "cancelled"))["started_at"] is None
    ran = await platform.wait(submitted["id"])
    assert ran["status"] == "completed"
    assert ran["input_sha256"] == hashlib.sha256(edited.read_bytes()).hexdigest() != submitted["input_sha256"]
    assert (await platform.history(ran["id"], "completed"))["input_sha256"] == ran["input_sha256"]


async def test_whole_run_timeout(platform: Platform, notebook: Notebook) -> None:
    notebook(platform.user("slow") / "sleep.ipynb", "import time\ntime.sleep(60)")
    started = asyncio.get_running_loop().time()
    run = (
        await platform.client.post(
            "/execute-notebook",
            json={"username": "slow", "notebook_path": "sleep.ipynb", "timeout_seconds": 2},
        )
    ).json()
    assert run["status"] == "timed_out"
    assert "2 s" in run["error_message"]
    assert asyncio.get_running_loop().time() - started < 15
    assert (await platform.history(run["id"], "timed_out"))["status"] == "timed_out"


async def test_cell_timeout_names_the_cell(platform: Platform, notebook: Notebook) -> None:
    notebook(platform.user("slowcell") / "cell.ipynb", "a = 1", "import time\ntime.sleep(60)")
    run = (
        await platform.client.post(
            "/execute-notebook",
            json={"username": "slowcell", "notebook_path": "cell.ipynb", "cell_timeout_seconds": 1},
        )
    ).json()
    assert run["status"] == "timed_out"
    assert "cell" in run["error_message"]
    assert run["error"]["cell_index"] == 1
    assert "time.sleep(60)" in run["error"]["cell_source"]


@pytest.mark.parametrize(
    "source",
    [
        "import time\ntime.sleep(60)",
        # A cell that swallows the interrupt: the kernel is killed after the grace period.
        "import time\nwhile True:\n    try:\n        time.sleep(60)\n"
        "    except KeyboardInterrupt:\n        pass",
    ],
    ids=["interrupted", "killed"],
)
async def test_cancel_a_running_run_within_5_seconds(
    platform: Platform, notebook: Notebook, source: str
) -> None:
    notebook(platform.user("cancel") / "long.ipynb", "import nbp\nnbp.record('started', 1)", source)
    response = await platform.client.post(
        "/executions", json={"username": "cancel", "notebook_path": "long.ipynb"}
    )
    run_id = response.json()["id"]
    await platform.wait_status(run_id, "running")
    await asyncio.sleep(1.0)  # inside the long cell
    asked = asyncio.get_running_loop().time()
    response = await platform.client.post(f"/executions/{run_id}/cancel")
    assert response.status_code == 202
    assert response.json()["cancel_requested"] is True
    run = await platform.wait(run_id, within=10)
    assert asyncio.get_running_loop().time() - asked < 5
    assert run["status"] == "cancelled"
    assert (await platform.history(run_id, "cancelled"))["status"] == "cancelled"

    again = await platform.client.post(f"/executions/{run_id}/cancel")
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"


async def test_list_notebooks(platform: Platform, notebook: Notebook) -> None:
    folder = platform.user("lister")
    notebook(folder / "a.ipynb", "x = 1")
    notebook(folder / "sub" / "b.ipynb", "x = 2")
    notebook(folder / "outputs" / "a-run.ipynb", "x = 3")
    (folder / "notes.txt").write_text("not a notebook")
    response = await platform.client.get("/list-notebooks/lister")
    assert response.status_code == 200
    body = response.json()
    assert (body["username"], body["user_home"], body["notebook_count"]) == ("lister", "/home/lister", 2)
    listed = body["notebooks"]
    assert [n["relative_path"] for n in listed] == ["a.ipynb", "sub/b.ipynb"]
    assert [n["path"] for n in listed] == ["/home/lister/a.ipynb", "/home/lister/sub/b.ipynb"]
    assert [n["name"] for n in listed] == ["a.ipynb", "b.ipynb"]
    assert listed[0]["size"] == (folder / "a.ipynb").stat().st_size
    assert listed[0]["modified"]
    nobody = (await platform.client.get("/list-notebooks/nobody-here")).json()
    assert (nobody["notebook_count"], nobody["notebooks"]) == (0, [])


# --- Bad input: refused before anything is queued --------------------------------------------------


async def test_missing_notebook_is_404(platform: Platform) -> None:
    platform.user("missing")
    before = await platform.job_count()
    response = await platform.client.post(
        "/execute", json={"username": "missing", "notebook_path": "nope.ipynb"}
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    response = await platform.client.post("/execute-notebook", json={"notebook_id": 987654})
    assert response.status_code == 404
    assert await platform.job_count() == before


async def test_resources_are_refused_by_runners_without_pods(platform: Platform, notebook: Notebook) -> None:
    """CPU/memory per run are a pod's (the kubernetes runner); this executor's sandbox has its own limits."""
    notebook(platform.user("sized") / "a.ipynb", "x = 1")
    before = await platform.job_count()
    for resources, field, rule in (
        ({"memory": "8Gi"}, "resources", "runner"),
        ({"gpu": "1"}, "resources.gpu", "extra_forbidden"),
    ):
        response = await platform.client.post(
            "/executions", json={"username": "sized", "notebook_path": "a.ipynb", "resources": resources}
        )
        assert response.status_code == 422, response.text
        error = response.json()["errors"][0]
        assert (error["field"], error["rule"]) == (field, rule), error
    assert await platform.job_count() == before


async def test_a_file_that_is_not_a_notebook_is_422_with_the_parse_error(platform: Platform) -> None:
    folder = platform.user("broken")
    (folder / "bad.ipynb").write_text('{"cells": [}')
    (folder / "wrong.ipynb").write_text('{"hello": "world"}')
    before = await platform.job_count()
    for name in ("bad.ipynb", "wrong.ipynb"):
        response = await platform.client.post("/execute", json={"username": "broken", "notebook_path": name})
        assert response.status_code == 422, response.text
        error = response.json()["errors"][0]
        assert error["field"] == "notebook_path"
        assert error["rule"] == "notebook"
        assert "not a Jupyter notebook" in error["message"]
    assert await platform.job_count() == before


async def test_paths_outside_the_users_folder_are_refused(
    platform: Platform, notebook: Notebook, tmp_path: Path
) -> None:
    notebook(platform.user("victim") / "secret.ipynb", "x = 1")
    folder = platform.user("mallory")
    outside = notebook(tmp_path / "elsewhere.ipynb", "x = 1")
    (folder / "link.ipynb").symlink_to(outside)
    (folder / "victim").symlink_to(platform.workspace / "victim")
    before = await platform.job_count()
    cases = [
        ("../victim/secret.ipynb", 422, "inside_user_folder"),
        ("sub/../../victim/secret.ipynb", 422, "inside_user_folder"),
        (str(outside), 422, "relative_path"),
        ("link.ipynb", 403, None),
        ("victim/secret.ipynb", 403, None),
        ("/home/victim/secret.ipynb", 403, "own_home"),
    ]
    for path, status, rule in cases:
        response = await platform.client.post("/execute", json={"username": "mallory", "notebook_path": path})
        assert response.status_code == status, (path, response.text)
        if rule:
            assert field_rules(response.json()) == {"notebook_path": rule}
    response = await platform.client.post(
        "/run-notebook",
        json={"username": "mallory", "input_path": "link.ipynb", "output_path": "../victim/x.ipynb"},
    )
    assert response.status_code == 403
    notebook(folder / "ok.ipynb", "x = 1")
    response = await platform.client.post(
        "/run-notebook",
        json={"username": "mallory", "input_path": "ok.ipynb", "output_path": "../victim/x.ipynb"},
    )
    assert response.status_code == 422
    assert field_rules(response.json()) == {"output_path": "inside_user_folder"}
    assert await platform.job_count() == before
    assert not (platform.workspace / "victim" / "outputs").exists()


async def test_bad_parameters_are_422_naming_each_parameter_and_rule(
    platform: Platform, notebook: Notebook
) -> None:
    notebook(platform.user("params") / "p.ipynb", "x = 1", parameters="n = 1\nname = 'a'\nmode = 'fast'")
    notebook_id = await platform.register(
        "params",
        "p.ipynb",
        [
            {"param_name": "n", "param_type": "int", "validation_rules": {"min": 1, "max": 10}},
            {"param_name": "name", "param_type": "str", "required": True},
            {"param_name": "mode", "param_type": "str", "validation_rules": {"choices": ["fast", "slow"]}},
            {"param_name": "when", "param_type": "date", "default_value": "2026-01-01"},
        ],
    )
    before = await platform.job_count()
    response = await platform.client.post(
        "/execute-notebook",
        json={"notebook_id": notebook_id, "parameters": {"n": 11, "mode": "medium", "when": 3, "extra": 1}},
    )
    assert response.status_code == 422, response.text
    assert field_rules(response.json()) == {
        "parameters.n": "max",
        "parameters.name": "required",
        "parameters.mode": "choices",
        "parameters.when": "type",
        "parameters.extra": "unknown",
    }
    response = await platform.client.post(
        "/execute-notebook", json={"notebook_id": notebook_id, "parameters": {"n": "3", "name": "x"}}
    )
    assert field_rules(response.json()) == {"parameters.n": "type"}
    assert await platform.job_count() == before


async def test_parameters_over_64_kb_are_413(platform: Platform, notebook: Notebook) -> None:
    notebook(platform.user("big") / "b.ipynb", "x = 1")
    before = await platform.job_count()
    response = await platform.client.post(
        "/execute", json={"username": "big", "notebook_path": "b.ipynb", "parameters": {"blob": "x" * 70_000}}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert await platform.job_count() == before


async def test_unknown_kernel_is_422(platform: Platform, notebook: Notebook) -> None:
    notebook(platform.user("kern") / "k.ipynb", "x = 1")
    notebook(platform.user("kern") / "other.ipynb", "x = 1", kernel="julia-9.9")
    before = await platform.job_count()
    response = await platform.client.post(
        "/execute-notebook", json={"username": "kern", "notebook_path": "k.ipynb", "kernel_name": "cobol-85"}
    )
    assert response.status_code == 422
    assert field_rules(response.json()) == {"kernel_name": "kernel"}
    response = await platform.client.post(
        "/execute", json={"username": "kern", "notebook_path": "other.ipynb"}
    )
    assert response.status_code == 422
    assert "julia-9.9" in response.json()["detail"]
    assert await platform.job_count() == before


async def test_request_shape_errors(platform: Platform) -> None:
    response = await platform.client.post("/execute", json={"username": "x"})
    assert response.status_code == 422
    response = await platform.client.post("/executions/999999/cancel")
    assert response.status_code == 404
    response = await platform.client.get("/executions/999999")
    assert response.status_code == 404
    response = await platform.client.get("/list-notebooks/-x")
    assert response.status_code == 422


# --- The seed's synchronous run endpoints: one handler, each with its own request model -------------

SEED_RUN_ROUTES = [
    ("/execute", "execute", "ExecuteRequest"),
    ("/run-notebook", "run_notebook", "RunNotebookRequest"),
    ("/execute-notebook", "execute_notebook", "ExecuteNotebookRequest"),
]


@pytest.mark.parametrize(("path", "name", "model"), SEED_RUN_ROUTES)
async def test_each_seed_run_endpoint_is_documented_with_its_own_request_model(
    platform: Platform, path: str, name: str, model: str
) -> None:
    operation = (await platform.client.get("/openapi.json")).json()["paths"][path]["post"]
    assert operation["operationId"] == f"{name}_{name}_post"
    assert operation["summary"] == name.replace("_", " ").title()
    assert operation["description"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": f"#/components/schemas/{model}"
    }
    assert sorted(operation["responses"]) == ["200", "202", "403", "404", "413", "422", "503"]
    assert [(p["name"], p["in"], p["schema"]["default"]) for p in operation["parameters"]] == [
        ("wait", "query", True)
    ]


@pytest.mark.parametrize(
    ("path", "body", "refused"),
    [
        # Fields of the full form only: the short forms refuse them.
        ("/execute", {"notebook_path": "x.ipynb", "kernel_name": "python3"}, "kernel_name"),
        ("/run-notebook", {"input_path": "x.ipynb", "tags": ["a"]}, "tags"),
        # The seed's /run-notebook field names are its own.
        ("/execute-notebook", {"notebook_path": "x.ipynb", "input_paths": "y"}, "input_paths"),
    ],
)
async def test_each_seed_run_endpoint_validates_with_its_own_model(
    platform: Platform, path: str, body: dict[str, Any], refused: str
) -> None:
    response = await platform.client.post(path, json={"username": "seedform", **body})
    assert response.status_code == 422, response.text
    assert field_rules(response.json()) == {refused: "extra_forbidden"}
