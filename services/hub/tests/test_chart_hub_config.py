"""The chart's JupyterHub is configured as the local one: its values' ``hub.config`` and ``extraConfig``
(charts/notebook-platform/values.yaml), run the way z2jh's hub runs them, give the same sign-in rules,
auth-state hand-off and single-user environment as ``nbp-hub``'s configuration. Only the addresses differ.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml
from nbp_hub import keycloak_login
from nbp_hub.main import hub_config
from nbp_hub.settings import HubSettings
from pydantic import SecretStr
from traitlets.config import Config

REPO = Path(__file__).resolve().parents[3]
DOMAIN = "nbp.example.org"
# Settings that name an address: the chart's are the cluster's, the local ones loopback.
ADDRESSES = {
    "authorize_url",
    "token_url",
    "userdata_url",
    "oauth_callback_url",
    "logout_redirect_url",
    "client_secret",
}


def lookup(tree: dict[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = tree
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def chart_hub_config(monkeypatch: pytest.MonkeyPatch) -> Config:
    """What z2jh's hub builds from our values: ``hub.config`` loaded into the config, then each
    ``extraConfig`` snippet run with ``c``; ``z2jh.get_config`` is a stand-in reading the same values (the
    real one reads the copy z2jh mounts into the hub pod, with ``Release`` added)."""
    values = yaml.safe_load((REPO / "charts" / "notebook-platform" / "values.yaml").read_text())
    hub_values = {
        **values["jupyterhub"],
        "global": {**values.get("global", {}), "domain": DOMAIN},
        "Release": {"Name": "nbp", "Namespace": "data"},
    }
    stand_in = types.ModuleType("z2jh")
    stand_in.get_config = lambda key, default=None: lookup(hub_values, key, default)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "z2jh", stand_in)
    # The module the chart mounts beside the config is this one (tests/chart checks they are identical).
    monkeypatch.setitem(sys.modules, "keycloak_login", keycloak_login)
    monkeypatch.setenv("OAUTH_CLIENT_SECRET", "from-the-secret")
    c = Config()
    for section, settings in hub_values["hub"]["config"].items():
        c[section].update(settings)
    for name, code in sorted(hub_values["hub"]["extraConfig"].items()):
        exec(compile(code, name, "exec"), {"c": c})
    return c


def local_hub_config(tmp_path: Path) -> Config:
    settings = HubSettings(
        hub_database_url="postgresql+psycopg2://hub@/jupyterhub",
        hub_state_dir=tmp_path / "hub",
        workspace=tmp_path / "workspace",
        api_url="http://127.0.0.1:18002",
        oidc_issuer="http://127.0.0.1:18180/realms/notebook-platform",
        jupyterhub_client_secret=SecretStr("local"),
    )
    return hub_config(settings)


def test_the_chart_hub_signs_in_hands_the_token_over_and_sets_the_environment_as_the_local_hub(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    chart, local = chart_hub_config(monkeypatch), local_hub_config(tmp_path)

    assert chart.JupyterHub.authenticator_class == local.JupyterHub.authenticator_class == "generic-oauth"
    assert chart.JupyterHub.load_roles == local.JupyterHub.load_roles
    for section in ("GenericOAuthenticator", "Authenticator"):
        local_rules = {k: v for k, v in local[section].items() if k not in ADDRESSES}
        chart_rules = {k: chart[section][k] for k in local_rules if k in chart[section]}
        assert chart_rules == local_rules, section
    assert chart.GenericOAuthenticator.client_secret == "from-the-secret"
    issuer = f"http://{DOMAIN}/auth/realms/notebook-platform"
    assert chart.GenericOAuthenticator.authorize_url == f"{issuer}/protocol/openid-connect/auth"
    assert chart.GenericOAuthenticator.token_url.startswith("http://nbp-keycloakx-http.data.svc:80/auth/")
    assert chart.GenericOAuthenticator.oauth_callback_url == f"http://{DOMAIN}/hub/oauth_callback"

    # Each server is told where the API is, by the one variable the nbp client reads; nothing else.
    environment = chart.KubeSpawner.environment.get_value({})  # z2jh's own entries start empty
    assert set(environment) == set(local.Spawner.environment) == {"NBP_URL"}
    assert environment["NBP_URL"] == f"http://{DOMAIN}"
    # The home is the user's folder: /home/<username>, as the sandbox binds it locally.
    assert chart.KubeSpawner.working_dir == "/home/{username}"
