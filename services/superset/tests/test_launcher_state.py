"""``nbp-superset`` keeps its state (generated secrets, Superset's home, the embedded PostgreSQL) in the
state folder ``NBP_STATE_DIR`` names, as ``make dev`` does with its own, never inside the checkout then."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

# What `nbp-superset prepare` does first: its layout, and the secrets it generates into the state folder.
PROBE = """
from nbp_superset.launcher import Layout, stored_secrets
layout = Layout.of_checkout()
stored_secrets(layout.state)
print(layout.state)
"""


def test_the_state_folder_is_nbp_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {**os.environ, "NBP_STATE_DIR": str(state)}
    env.pop("NBP_SUPERSET_SECRET_KEY", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert Path(done.stdout.strip()) == (state / "superset").resolve()
    secrets = state / "superset" / "secrets.env"
    assert "NBP_SUPERSET_SECRET_KEY=" in secrets.read_text()
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
