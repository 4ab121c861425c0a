"""``examples/``: the prototype's example workflow, on the SDK, run against the running platform."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.executor import Platform

pytestmark = pytest.mark.timeout(240)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


async def test_the_notebook_manager_example_runs_end_to_end(platform: Platform, tmp_path: Path) -> None:
    # Without sign-in every caller is the development user "dev": the example works in dev's folder.
    shutil.copy(EXAMPLES / "sales_analysis.ipynb", platform.user("dev") / "sales_analysis.ipynb")
    env = {**os.environ, "NBP_CONFIG_DIR": str(tmp_path)}
    env.pop("NBP_URL", None)
    env.pop("NBP_TOKEN", None)
    command = [sys.executable, str(EXAMPLES / "notebook_manager.py"), "--server", platform.url]
    for attempt in ("first", "again"):  # a second run finds what the first registered
        done = await asyncio.to_thread(
            subprocess.run, command, env=env, capture_output=True, text=True, timeout=200, check=False
        )
        assert done.returncode == 0, f"{attempt}:\n{done.stdout}\n{done.stderr}"
        lines = done.stdout
        assert "1. Health: healthy" in lines
        assert "2. Registered notebook" in lines
        assert "sales_analysis.ipynb" in lines
        assert "3. Parameters: region:str, month:int, growth:float" in lines
        assert " completed in " in lines
        assert "6. Recorded: completed" in lines  # the SDK's run answered once the history had it
        assert '"region": "south"' in lines
        assert '"months": 3' in lines
    assert "(already registered)" in done.stdout
    assert "2 execution(s) of sales_analysis" in done.stdout
