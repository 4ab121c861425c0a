from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nbp_executor.testing import Platform


async def test_smoke(platform: Platform, notebook: Callable[..., Path]) -> None:
    folder = platform.user("smoke")
    notebook(folder / "hello.ipynb", "import nbp\nnbp.record('answer', x * 2)", parameters="x = 1")
    response = await platform.client.post(
        "/execute", json={"user": "smoke", "path": "hello.ipynb", "params": {"x": 21}}
    )
    print(response.json())
    assert response.status_code == 200
    assert response.json()["status"] == "completed"
