"""The local hub's settings (prefix ``NBP_``); ``make dev`` sets them for it."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NBP_", extra="ignore")

    hub_port: int = Field(default=8000, ge=1, le=65535)  # what browsers open (the proxy)
    hub_api_port: int = Field(default=8081, ge=1, le=65535)  # the hub itself (servers call its API)
    hub_proxy_api_port: int = Field(default=8001, ge=1, le=65535)  # the proxy's REST API
    # The hub's own tables: PostgreSQL (make dev: a database of the embedded server).
    hub_database_url: str
    # The cookie secret and the auth-state key are generated here once (mode 600) and never printed.
    hub_state_dir: Path = Path(".nbp/hub")
    workspace: Path = Path(".nbp/workspace")
    api_url: str = "http://127.0.0.1:8002"
    oidc_issuer: str  # the realm, e.g. http://127.0.0.1:8180/realms/notebook-platform
    jupyterhub_client_secret: SecretStr
    # configurable-http-proxy, installed by the Makefile from npm.
    chp_path: Path = Path(".cache/chp/node_modules/.bin/configurable-http-proxy")

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}"
