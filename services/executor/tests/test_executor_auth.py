"""With Keycloak, the executor's calls to the registry and the history carry its own token."""

from __future__ import annotations

from pathlib import Path

import pytest
from nbp_common.app import create_app
from nbp_common.auth import ServiceTokenProvider
from nbp_executor.main import SPEC as EXECUTOR
from sqlalchemy.engine import URL

from tests.support.common import settings_for


async def test_the_executor_calls_other_services_with_its_own_token(
    database_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBP_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("NBP_EXECUTOR_WORKERS", "0")
    monkeypatch.setenv("NBP_AUTH", "keycloak")
    monkeypatch.setenv("NBP_OIDC_ISSUER", "http://127.0.0.1:9/realms/notebook-platform")
    monkeypatch.setenv("NBP_SERVICE_CLIENT_ID", "nbp-executor")
    monkeypatch.setenv("NBP_SERVICE_CLIENT_SECRET", "secret")
    app = create_app([EXECUTOR], settings_for(database_url))
    async with app.router.lifespan_context(app):
        tokens = app.state.executor.http.auth
        assert isinstance(tokens, ServiceTokenProvider)
        assert tokens.client_id == "nbp-executor"

    monkeypatch.delenv("NBP_SERVICE_CLIENT_SECRET")
    app = create_app([EXECUTOR], settings_for(database_url))
    with pytest.raises(ValueError, match="NBP_SERVICE_CLIENT_SECRET"):
        async with app.router.lifespan_context(app):
            pass


async def test_without_keycloak_calls_carry_no_token(
    database_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBP_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("NBP_EXECUTOR_WORKERS", "0")
    monkeypatch.setenv("NBP_AUTH", "none")
    app = create_app([EXECUTOR], settings_for(database_url))
    async with app.router.lifespan_context(app):
        assert not isinstance(app.state.executor.http.auth, ServiceTokenProvider)
