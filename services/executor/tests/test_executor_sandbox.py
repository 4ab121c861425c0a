"""The ``sandbox`` runner against escapes: registry, history and executor as real processes (the executor
started with a canary secret, and JupyterHub's token, in its environment), notebooks run as ``alice``
trying to reach what is not hers, and runs that exceed the sandbox's limits. Every escape fails, the
executor is unharmed, the next run is fine, and the same notebook's legitimate work succeeds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from nbp_common.events import TERMINAL
from sqlalchemy.engine import URL

from tests.support.common import RestartableService, asyncpg_dsn, scratch_database

pytestmark = pytest.mark.timeout(300)

Notebook = Callable[..., Path]
CANARY = "canary-7d2e61-executor-secret"
CHECKOUT = Path(__file__).resolve().parents[3]

PROBE = r"""
import glob, json, os, signal
import numpy, pandas, nbp
escapes = {}
def attempt(name, action):
    try:
        escapes[name] = "REACHED: " + repr(action())[:200]
    except Exception as exc:
        escapes[name] = "refused: " + type(exc).__name__
attempt("other_relative", lambda: open("../bob/private.txt").read())
attempt("other_absolute", lambda: open(workspace + "/bob/private.txt").read())
attempt("other_home", lambda: open("/home/bob/private.txt").read())
attempt("other_symlink", lambda: open("bob-link/private.txt").read())
attempt("other_relative_symlink", lambda: open("bob-rel/private.txt").read())
attempt("write_other", lambda: open(workspace + "/bob/pwned.txt", "w").write("x"))
attempt("write_other_home", lambda: open("/home/bob/pwned.txt", "w").write("x"))
attempt("workspace_root", lambda: os.listdir(workspace))
attempt("nbp_data", lambda: os.listdir(checkout + "/.nbp"))
attempt("database_files", lambda: os.listdir(database_files))
attempt("checkout", lambda: open(checkout + "/pyproject.toml").read())
attempt("checkout_code", lambda: os.listdir(checkout + "/services/executor"))
attempt("shadow", lambda: open("/etc/shadow").read())
attempt("signal_executor", lambda: os.kill(executor_pid, signal.SIGKILL))
attempt("signal_everyone", lambda: os.kill(-1, signal.SIGTERM))
canary = canary_reversed[::-1]
leaks = []
for path in glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline"):
    try:
        if canary.encode() in open(path, "rb").read():
            leaks.append(path)
    except OSError:
        pass
escapes["canary"] = leaks
escapes["canary_in_env"] = [
    k for k, v in os.environ.items() if canary in v or k.startswith(("NBP_", "JUPYTERHUB_"))
]
escapes["homes"] = sorted(os.listdir("/home"))
nbp.record("escapes", escapes)
"""

LEGITIMATE = r"""
with open("notes/mine.txt", "w") as f:
    f.write(greeting)
frame = pandas.DataFrame({"x": numpy.arange(4)})
nbp.record("total", float(frame["x"].sum()))
nbp.record("read_back", open("notes/mine.txt").read())
nbp.record("cwd", os.getcwd())
"""


@dataclass
class Sandboxed:
    executor: RestartableService
    client: httpx.AsyncClient
    workspace: Path
    database_files: Path  # the PostgreSQL server's data directory: every service's tables

    async def run(self, username: str, path: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.client.post(
            "/executions",
            json={"username": username, "notebook_path": path, "parameters": parameters or {}},
        )
        assert response.status_code == 202, response.text
        run_id = response.json()["id"]
        for _ in range(1200):
            body: dict[str, Any] = (await self.client.get(f"/executions/{run_id}")).json()
            if body["status"] in TERMINAL:
                return body
            await asyncio.sleep(0.1)
        raise AssertionError(f"run {run_id} did not end: {body}")

    async def unharmed(self, notebook: Notebook) -> None:
        """The executor process is alive and the next run (as another user) completes."""
        assert self.executor.process is not None
        assert self.executor.process.returncode is None
        notebook(self.workspace / "carol" / "ok.ipynb", "import nbp\nnbp.record('ok', 1)")
        run = await self.run("carol", "ok.ipynb")
        assert run["status"] == "completed", run


@pytest.fixture(scope="module")
async def sandboxed(
    pg_admin_url: URL, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Sandboxed]:
    workspace = tmp_path_factory.mktemp("sandbox-workspace")
    logs = tmp_path_factory.mktemp("sandbox-logs")
    connection = await asyncpg.connect(asyncpg_dsn(pg_admin_url))
    try:
        database_files = Path(await connection.fetchval("SHOW data_directory"))
    finally:
        await connection.close()
    async with scratch_database(pg_admin_url, "nbp_sandbox", template_database) as url:
        base = {
            "NBP_DATABASE_URL": url.render_as_string(hide_password=False),
            "NBP_LOG_JSON": "false",
            "NBP_LOG_LEVEL": "WARNING",
        }
        registry = RestartableService("registry", base, log_dir=logs)
        history = RestartableService("history", base, log_dir=logs)
        await asyncio.gather(registry.start(), history.start())
        executor = RestartableService(
            "executor",
            {
                **base,
                "NBP_WORKSPACE": str(workspace),
                "NBP_REGISTRY_URL": registry.url,
                "NBP_HISTORY_URL": history.url,
                "NBP_EXECUTOR_RUNNER": "sandbox",
                "NBP_EXECUTOR_WORKERS": "2",
                "NBP_EXECUTOR_SANDBOX_MEMORY_MB": "1536",
                "NBP_EXECUTOR_SANDBOX_CPU_SECONDS": "8",
                "NBP_EXECUTOR_SANDBOX_PROCESSES": "128",
                # Secrets the executor holds: no run may find them anywhere.
                "NBP_SERVICE_CLIENT_SECRET": CANARY,
                "NBP_DB_PASSWORD": CANARY,
                # An executor started inside a JupyterHub server: its hub token reaches no run either.
                "JUPYTERHUB_API_TOKEN": CANARY,
                "JUPYTERHUB_USER": "executor",
            },
            log_dir=logs,
        )
        await executor.start()
        try:
            async with httpx.AsyncClient(base_url=executor.url, timeout=60) as client:
                yield Sandboxed(executor, client, workspace, database_files)
        finally:
            await executor.stop(grace=10)
            await asyncio.gather(history.stop(), registry.stop())


async def test_every_escape_fails_and_the_legitimate_work_succeeds(
    sandboxed: Sandboxed, notebook: Notebook
) -> None:
    workspace = sandboxed.workspace
    (workspace / "bob").mkdir()
    (workspace / "bob" / "private.txt").write_text("bob's secret")
    alice = workspace / "alice"
    (alice / "notes").mkdir(parents=True)
    (alice / "bob-link").symlink_to(workspace / "bob")
    (alice / "bob-rel").symlink_to("../bob")
    notebook(
        alice / "probe.ipynb",
        PROBE,
        LEGITIMATE,
        parameters=(
            "workspace = ''\ncheckout = ''\ndatabase_files = ''\nexecutor_pid = 0\n"
            "canary_reversed = ''\ngreeting = ''"
        ),
    )
    assert sandboxed.executor.process is not None
    run = await sandboxed.run(
        "alice",
        "probe.ipynb",
        {
            "workspace": str(workspace),
            "checkout": str(CHECKOUT),
            "database_files": str(sandboxed.database_files),
            "executor_pid": sandboxed.executor.process.pid,
            "canary_reversed": CANARY[::-1],
            "greeting": "hello from alice",
        },
    )
    assert run["status"] == "completed", run
    # What the probe was refused is there on the host (a refusal means something).
    for there in (workspace / "bob" / "private.txt", CHECKOUT / "pyproject.toml", Path("/etc/shadow")):
        assert there.is_file(), there
    assert (sandboxed.database_files / "PG_VERSION").is_file()
    results = {r["name"]: r for r in run["results"]}
    escapes = results["escapes"]["value_json"]
    reached = {name: value for name, value in escapes.items() if str(value).startswith("REACHED")}
    assert reached == {}
    assert escapes["canary"] == []
    assert escapes["canary_in_env"] == []
    assert escapes["homes"] == ["alice"]
    assert not (workspace / "bob" / "pwned.txt").exists()
    # The legitimate work: its own folder, numpy and pandas, nbp.record, Papermill's parameters.
    assert results["total"]["value_numeric"] == 6.0
    assert results["read_back"]["value_json"] == "hello from alice"
    assert results["cwd"]["value_json"] == "/home/alice"
    assert (alice / "notes" / "mine.txt").read_text() == "hello from alice"
    assert (alice / run["output_path"]).is_file()
    await sandboxed.unharmed(notebook)


async def test_a_fork_bomb_fails_the_run_naming_the_process_limit(
    sandboxed: Sandboxed, notebook: Notebook
) -> None:
    notebook(
        sandboxed.workspace / "alice" / "bomb.ipynb",
        "import os, time\nwhile True:\n    if os.fork() == 0:\n        time.sleep(600)\n        os._exit(0)",
    )
    run = await sandboxed.run("alice", "bomb.ipynb")
    assert run["status"] == "failed", run
    assert "process-count limit of 128" in run["error_message"], run["error_message"]
    assert run["error"]["ename"] == "BlockingIOError"
    await sandboxed.unharmed(notebook)
    notebook(sandboxed.workspace / "alice" / "after.ipynb", "import nbp\nnbp.record('after', 1)")
    assert (await sandboxed.run("alice", "after.ipynb"))["status"] == "completed"


async def test_memory_past_the_limit_fails_the_run_naming_it(
    sandboxed: Sandboxed, notebook: Notebook
) -> None:
    notebook(sandboxed.workspace / "alice" / "hog.ipynb", "block = bytearray(2 << 30)")
    run = await sandboxed.run("alice", "hog.ipynb")
    assert run["status"] == "failed", run
    assert "memory limit of 1536 MiB" in run["error_message"], run["error_message"]
    await sandboxed.unharmed(notebook)


async def test_cpu_time_past_the_limit_fails_the_run_naming_it(
    sandboxed: Sandboxed, notebook: Notebook
) -> None:
    notebook(sandboxed.workspace / "alice" / "spin.ipynb", "while True:\n    pass")
    run = await sandboxed.run("alice", "spin.ipynb")
    assert run["status"] == "failed", run
    assert "CPU-time limit of 8 s" in run["error_message"], run["error_message"]
    await sandboxed.unharmed(notebook)
