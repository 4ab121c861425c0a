"""``make dev``'s server runs notebooks too: the executor's routes and workers on the same port as the
registry and the history, which it calls over HTTP (at this same server)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.common import free_port, start_process
from tests.support.executor import write_notebook


@pytest.mark.timeout(240)
def test_dev_server_runs_a_registered_notebook_end_to_end(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    write_notebook(
        workspace / "dana" / "report.ipynb", "import nbp\nnbp.record('double', n * 2)", parameters="n = 1"
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBP_")}
    env.update(NBP_LOG_JSON="false", NBP_WORKSPACE=str(workspace))
    command = [str(Path(sys.executable).with_name("nbp-dev")), "--port", str(port)]
    command += ["--data-dir", str(tmp_path / "postgres")]
    server = start_process(command, env, port, tmp_path / "dev.log", timeout=120)
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            notebook = client.post(
                "/db/notebooks", json={"name": "report", "file_path": "report.ipynb", "username": "dana"}
            ).json()
            client.post(
                f"/db/parameters/bulk/{notebook['id']}",
                json=[{"param_name": "n", "param_type": "int", "default_value": 5}],
            ).raise_for_status()
            run = client.post("/execute", json={"notebook_id": notebook["id"], "params": {"n": 21}}).json()
            assert run["status"] == "completed", run
            assert run["results"][0]["value_numeric"] == 42.0
            listed = client.get("/list-notebooks/dana").json()["notebooks"]
            assert [n["relative_path"] for n in listed] == ["report.ipynb"]
            for _ in range(100):
                record = client.get(f"/db/executions/{run['id']}")
                if record.status_code == 200 and record.json()["status"] == "completed":
                    break
                time.sleep(0.1)
            assert record.json()["results"][0]["value_numeric"] == 42.0
    finally:
        assert server.stop(signal.SIGINT) == 0
