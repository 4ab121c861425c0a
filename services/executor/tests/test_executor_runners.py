"""The runner layer's guard rails and the executor's secrets, without a kernel."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest
from nbp_common.auth import AuthSettings
from nbp_common.settings import Settings
from nbp_executor.runners import RunnerRefused, build_runner
from nbp_executor.runners.sandbox import SandboxRunner
from nbp_executor.runners.trusted import TrustedRunner
from nbp_executor.runtime import make_undumpable
from nbp_executor.settings import ExecutorSettings

KEYCLOAK = {"auth": "keycloak", "oidc_issuer": "http://127.0.0.1:1/realms/x"}


def test_sandbox_is_the_default_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBP_EXECUTOR_RUNNER", raising=False)
    assert isinstance(build_runner(ExecutorSettings(), AuthSettings(auth="none")), SandboxRunner)


def test_trusted_is_refused_under_keycloak_unless_allowed() -> None:
    trusted = ExecutorSettings(executor_runner="trusted")
    with pytest.raises(RunnerRefused, match="NBP_EXECUTOR_ALLOW_TRUSTED=true"):
        build_runner(trusted, AuthSettings(**KEYCLOAK))  # type: ignore[arg-type]
    allowed = ExecutorSettings(executor_runner="trusted", executor_allow_trusted=True)
    assert isinstance(build_runner(allowed, AuthSettings(**KEYCLOAK)), TrustedRunner)  # type: ignore[arg-type]


def test_trusted_is_announced_loudly(caplog: pytest.LogCaptureFixture) -> None:
    build_runner(ExecutorSettings(executor_runner="trusted"), AuthSettings(auth="none"))
    assert any("INSIDE the executor" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


def test_secrets_come_from_files_readable_by_the_owner_only(tmp_path: Path) -> None:
    password = tmp_path / "db-password"
    password.write_text("s3cret\n")
    password.chmod(0o400)
    assert Settings(db_password_file=password).db_password == "s3cret"
    secret = tmp_path / "client-secret"
    secret.write_text("client-s3cret")
    secret.chmod(0o400)
    auth = AuthSettings(service_client_secret_file=secret)
    assert auth.service_client_secret is not None
    assert auth.service_client_secret.get_secret_value() == "client-s3cret"
    password.chmod(0o644)
    with pytest.raises(ValueError, match="readable by other users"):
        Settings(db_password_file=password)


def test_the_executor_marks_itself_non_dumpable() -> None:
    make_undumpable()
    assert ctypes.CDLL(None).prctl(3, 0, 0, 0, 0) == 0  # PR_GET_DUMPABLE
