"""Through the ingress: the API registers and runs a notebook and records the run; the rest answers.

The notebook file is put into the shared workspace with `kubectl exec` into the executor (as a user would
save it from JupyterHub); everything else goes through the public URL. The runs' pods: test_runs_in_pods.py.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx

from conftest import answer, put_file

TERMINAL = {"completed", "failed", "cancelled", "timed_out"}

NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "params",
            "metadata": {"tags": ["parameters"]},
            "outputs": [],
            "source": ["greeting = 'hello'\n"],
        },
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "work",
            "metadata": {},
            "outputs": [],
            "source": [
                "import numpy as np\n",
                "result = float(np.arange(10).sum())\n",
                "print(greeting, result)\n",
            ],
        },
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def test_health_and_docs_show_all_three_apis(http: httpx.Client, base_url: str) -> None:
    assert http.get(f"{base_url}/health").status_code == 200
    assert http.get(f"{base_url}/docs").status_code == 200
    spec = answer(http.get(f"{base_url}/openapi.json"), 200)
    paths = set(spec["paths"])
    for prefix in ("/db/notebooks", "/execute", "/db/executions"):
        assert any(p.startswith(prefix) for p in paths), f"/openapi.json lacks {prefix}: {sorted(paths)}"


def test_api_requires_a_token(http: httpx.Client, base_url: str) -> None:
    response = http.get(f"{base_url}/db/notebooks")
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/json")


def test_unlisted_paths_are_not_published(http: httpx.Client, base_url: str) -> None:
    assert http.get(f"{base_url}/metrics").status_code == 404


def test_register_run_and_history(
    http: httpx.Client, base_url: str, auth: dict[str, str], username: str
) -> None:
    relative = f"e2e/hello-{uuid.uuid4().hex[:8]}.ipynb"
    put_file(username, relative, json.dumps(NOTEBOOK))

    notebook = answer(
        http.post(
            f"{base_url}/db/notebooks",
            headers=auth,
            json={
                "name": f"e2e-{uuid.uuid4().hex[:8]}",
                "username": username,
                "file_path": relative,
                "description": "end-to-end test",
            },
        ),
        200,
        201,
    )
    notebook_id = notebook["id"]

    submitted = answer(
        http.post(
            f"{base_url}/executions",
            headers=auth,
            json={
                "notebook_id": notebook_id,
                "parameters": {"greeting": "hi"},
            },
        ),
        200,
        201,
        202,
    )
    execution_id = submitted.get("id") or submitted.get("execution_id")
    deadline = time.monotonic() + 600
    while True:
        status = answer(http.get(f"{base_url}/executions/{execution_id}", headers=auth), 200)
        if status["status"] in TERMINAL:
            break
        assert time.monotonic() < deadline, f"run {execution_id} still {status['status']}"
        time.sleep(3)
    assert status["status"] == "completed", status

    deadline = time.monotonic() + 120
    while True:  # the executor relays the run to history through its outbox: allow it a moment
        runs = answer(http.get(f"{base_url}/db/executions/notebook/{notebook_id}", headers=auth), 200)
        items = runs["items"] if isinstance(runs, dict) and "items" in runs else runs
        if any(r.get("status") == "completed" for r in items):
            break
        assert time.monotonic() < deadline, f"history has no completed run of notebook {notebook_id}: {items}"
        time.sleep(3)


def test_keycloak_publishes_the_public_issuer(http: httpx.Client, base_url: str) -> None:
    document = answer(
        http.get(f"{base_url}/auth/realms/notebook-platform/.well-known/openid-configuration"), 200
    )
    assert document["issuer"] == f"{base_url}/auth/realms/notebook-platform"


def test_jupyterhub_answers(http: httpx.Client, base_url: str) -> None:
    info = answer(http.get(f"{base_url}/hub/api/"), 200)
    assert "version" in info
    login = http.get(f"{base_url}/hub/oauth_login")
    assert login.status_code == 302
    assert login.headers["location"].startswith(f"{base_url}/auth/realms/notebook-platform/")


def test_superset_answers(http: httpx.Client, superset_url: str) -> None:
    response = http.get(f"{superset_url}/health")
    assert response.status_code == 200
    assert response.text.strip() == "OK"
