"""Where the local hub writes its own files: its state folder, never the folder it was started from (the
checkout, for ``make dev``)."""

from __future__ import annotations

from pathlib import Path

from nbp_hub.main import hub_config
from nbp_hub.settings import HubSettings
from pydantic import SecretStr


def test_the_hub_and_its_proxy_keep_their_pid_files_in_the_state_folder(tmp_path: Path) -> None:
    state = tmp_path / "hub"
    c = hub_config(
        HubSettings(
            hub_database_url="postgresql+psycopg2://hub@/jupyterhub",
            hub_state_dir=state,
            workspace=tmp_path / "workspace",
            api_url="http://127.0.0.1:18002",
            oidc_issuer="http://127.0.0.1:18180/realms/notebook-platform",
            jupyterhub_client_secret=SecretStr("local"),
        )
    )
    for pid_file in (c.JupyterHub.pid_file, c.ConfigurableHTTPProxy.pid_file):
        assert Path(pid_file).parent == state.resolve(), pid_file
    assert c.JupyterHub.pid_file != c.ConfigurableHTTPProxy.pid_file
