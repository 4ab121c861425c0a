"""The ``nbp`` command line as a person or a script runs it (a real process) against the running
platform: tables for people, ``--json`` that parses for scripts, exit codes that say what happened."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.executor import Platform

pytestmark = pytest.mark.timeout(300)

NBP = str(Path(sys.executable).with_name("nbp"))


def nbp_command(platform: Platform, config: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    env = {**os.environ, "NBP_URL": platform.url, "NBP_CONFIG_DIR": str(config), "COLUMNS": "200"}
    env.pop("NBP_TOKEN", None)

    def run(*args: str, expect: int = 0, answer: str = "") -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [NBP, *args], env=env, input=answer, capture_output=True, text=True, timeout=240, check=False
        )
        assert done.returncode == expect, (
            f"nbp {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
        return done

    return run


async def cli(
    platform: Platform, config: Path, *args: str, expect: int = 0, answer: str = ""
) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(nbp_command(platform, config), *args, expect=expect, answer=answer)


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


async def test_register_define_run_and_read_back(
    platform: Platform, notebook: Callable[..., Path], tmp_path: Path
) -> None:
    notebook(
        platform.user("dev") / "cli" / "steps.ipynb",
        "import time\ntime.sleep(0.3)",
        "import nbp\nnbp.record('total', n * 3)",
        parameters="n = 1",
    )
    config = tmp_path / "config"
    created = as_json(
        await cli(platform, config, "notebooks", "register", "cli/steps.ipynb", "--name", "steps", "--json")
    )
    assert created["file_path"] == "cli/steps.ipynb"
    notebook_id = str(created["id"])

    param = as_json(
        await cli(
            platform,
            config,
            "params",
            "add",
            "steps",
            "n",
            "--type",
            "integer",
            "--default",
            "1",
            "--rule",
            "min=0",
            "--json",
        )
    )
    assert (param["param_type"], param["default_value"], param["validation_rules"]) == ("int", 1, {"min": 0})

    listed = as_json(await cli(platform, config, "notebooks", "list", "--json"))
    assert [n["name"] for n in listed if n["id"] == created["id"]] == ["steps"]
    shown = await cli(platform, config, "notebooks", "show", notebook_id)
    assert "steps" in shown.stdout
    assert "param_name" in shown.stdout

    # A person's run: live progress on stderr, then status, duration, results and where the output is.
    ran = await cli(platform, config, "run", "steps", "-p", "n=5", "--wait")
    assert "completed" in ran.stdout
    assert "total" in ran.stdout
    assert "15" in ran.stdout
    assert "output: outputs/steps-" in ran.stdout
    assert "cells" in ran.stderr

    # A script's run.
    run = as_json(await cli(platform, config, "run", notebook_id, "-p", "n=2", "--wait", "--json"))
    assert run["status"] == "completed"
    assert run["results"] == [{"name": "total", "value_numeric": 6.0, "value_json": None}]

    shown_run = as_json(await cli(platform, config, "runs", "show", str(run["id"]), "--json"))
    assert shown_run["id"] == run["id"]
    await platform.history(run["id"], "completed")
    history = as_json(await cli(platform, config, "runs", "list", "--notebook", notebook_id, "--json"))
    assert run["id"] in [r["id"] for r in history]
    html = await cli(platform, config, "runs", "output", str(run["id"]), "--html")
    assert "<html" in html.stdout.lower()
    ipynb = as_json(await cli(platform, config, "runs", "output", str(run["id"]), "--json"))
    assert ipynb["nbformat"] == 4
    stats = as_json(await cli(platform, config, "stats", "--notebook", notebook_id, "--json"))
    assert stats["total"] >= 2


async def test_register_infers_parameters_and_shows_them_before_storing(
    platform: Platform, notebook: Callable[..., Path], tmp_path: Path
) -> None:
    notebook(
        platform.user("dev") / "cli" / "inferred.ipynb",
        "print(rate)",
        parameters="rate = 0.25  # the rate\nlabel: str = 'a'",
    )
    config = tmp_path / "config"
    declined = await cli(
        platform, config, "notebooks", "register", "cli/inferred.ipynb", "--infer", answer="n\n", expect=130
    )
    assert "rate" in declined.stdout
    assert "the rate" in declined.stdout
    names = [n["name"] for n in as_json(await cli(platform, config, "notebooks", "list", "--json"))]
    assert "inferred" not in names, "nothing is stored when the person declines"

    accepted = await cli(
        platform, config, "notebooks", "register", "cli/inferred.ipynb", "--infer", answer="y\n"
    )
    assert "Registered notebook" in accepted.stdout
    stored = as_json(await cli(platform, config, "params", "list", "inferred", "--json"))
    assert [(p["param_name"], p["param_type"], p["default_value"], p["description"]) for p in stored] == [
        ("rate", "float", 0.25, "the rate"),
        ("label", "str", "a", None),
    ]


async def test_exit_codes_say_what_happened(
    platform: Platform, notebook: Callable[..., Path], tmp_path: Path
) -> None:
    config = tmp_path / "config"
    notebook(platform.user("dev") / "cli" / "boom.ipynb", "raise ValueError('boom')")
    failed = await cli(platform, config, "run", "cli/boom.ipynb", "--wait", expect=1)
    assert "failed" in failed.stdout
    assert "boom" in failed.stdout
    missing = await cli(platform, config, "notebooks", "show", "999999999", expect=3)
    assert "does not exist" in missing.stderr
    refused = await cli(platform, config, "notebooks", "register", "/etc/x.ipynb", expect=5)
    assert "file_path" in refused.stderr
    assert "relative_path" in refused.stderr
    forbidden = await cli(platform, config, "notebooks", "register", "/home/someone/x.ipynb", expect=4)
    assert "own_home" in forbidden.stderr
    await cli(platform, config, "run", "cli/x.ipynb", "-p", "novalue", expect=2)


async def test_the_cli_without_a_server_is_unavailable(tmp_path: Path) -> None:
    env = {**os.environ, "NBP_URL": "http://127.0.0.1:9", "NBP_CONFIG_DIR": str(tmp_path)}
    done = await asyncio.to_thread(
        subprocess.run,
        [NBP, "notebooks", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 6, done.stderr
    assert "not reachable" in done.stderr


def test_shell_completion_is_offered() -> None:
    done = subprocess.run([NBP, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0
    assert "--install-completion" in done.stdout
    completion = subprocess.run(
        [NBP, "--show-completion", "bash"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "SHELL": "/bin/bash"},
    )
    assert "_NBP_COMPLETE" in completion.stdout


async def test_schedules_from_the_command_line(
    platform: Platform, notebook: Callable[..., Path], tmp_path: Path
) -> None:
    notebook(platform.user("dev") / "cli" / "nightly.ipynb", "print(n)", parameters="n = 1")
    config = tmp_path / "config"
    created = as_json(
        await cli(
            platform,
            config,
            "schedules",
            "create",
            "cli/nightly.ipynb",
            "--cron",
            "30 2 * * *",
            "--tz",
            "Europe/Berlin",
            "-p",
            "n=5",
            "--json",
        )
    )
    assert created["parameters"] == {"n": 5}
    assert created["timezone"] == "Europe/Berlin"
    schedule_id = str(created["id"])
    shown = as_json(await cli(platform, config, "schedules", "show", schedule_id, "--json"))
    assert len(shown["next_fire_times"]) == 5
    assert schedule_id in (await cli(platform, config, "schedules", "list")).stdout
    assert (
        as_json(await cli(platform, config, "schedules", "pause", schedule_id, "--json"))["enabled"] is False
    )
    assert (
        as_json(await cli(platform, config, "schedules", "resume", schedule_id, "--json"))["enabled"] is True
    )
    run = as_json(await cli(platform, config, "schedules", "run-now", schedule_id, "--json"))
    assert (await platform.wait(run["id"]))["status"] == "completed"
    runs = as_json(await cli(platform, config, "schedules", "runs", schedule_id, "--json"))
    assert [r["id"] for r in runs] == [run["id"]]
    refused = await cli(
        platform, config, "schedules", "create", "cli/nightly.ipynb", "--cron", "every day", expect=5
    )
    assert "cron" in refused.stderr + refused.stdout
    await cli(platform, config, "schedules", "delete", schedule_id, "--yes")
    await cli(platform, config, "schedules", "show", schedule_id, expect=3)


async def test_ctrl_c_during_run_wait_cancels_the_run(
    platform: Platform, notebook: Callable[..., Path], tmp_path: Path
) -> None:
    notebook(platform.user("dev") / "cli" / "slow.ipynb", "import time\ntime.sleep(120)")
    env = {**os.environ, "NBP_URL": platform.url, "NBP_CONFIG_DIR": str(tmp_path), "COLUMNS": "200"}
    process = await asyncio.create_subprocess_exec(
        NBP,
        "run",
        "cli/slow.ipynb",
        "--wait",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    active: list[dict[str, Any]] = []
    for _ in range(600):
        active = (await platform.client.get("/executions", params={"username": "dev"})).json()
        if any(run["status"] == "running" and run["input_path"] == "cli/slow.ipynb" for run in active):
            break
        await asyncio.sleep(0.1)
    (run,) = [run for run in active if run["input_path"] == "cli/slow.ipynb"]
    process.send_signal(signal.SIGINT)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    # Not at a terminal, there is nobody to ask: Ctrl-C cancels the run, and the CLI says how it ended.
    assert process.returncode == 1, (stdout, stderr)
    assert f"Cancelling run {run['id']}" in stderr.decode()
    assert "cancelled" in stdout.decode()
    assert (await platform.wait(run["id"]))["status"] == "cancelled"
