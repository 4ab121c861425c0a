"""End-to-end tests against a deployed platform, through its ingress (`make e2e`, after `make deploy`).

They need a running cluster, so they are collected only when NBP_E2E_URL names the platform's public
URL (the Makefile sets it); without it pytest collects nothing here and reports "no tests ran", which
fails a run that asked for them. Tokens come from Keycloak: the executor's service account (client
credentials, secret from the cluster - NBP_E2E_CLIENT_SECRET) or a user's password grant
(NBP_E2E_USERNAME / NBP_E2E_PASSWORD, a realm dev user) when set.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

BASE_URL = os.environ.get("NBP_E2E_URL", "").rstrip("/")

if not BASE_URL:
    collect_ignore_glob = ["test_*.py"]


NAMESPACE = os.environ.get("NBP_E2E_NAMESPACE", "notebook-platform")
RELEASE = os.environ.get("NBP_E2E_RELEASE", "nbp")


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    """kubectl against the cluster of the current context (kind's, after `make kind-up`), in the
    platform's namespace; its output. With check=False a failing exit status is accepted (`auth can-i`
    answers "no" with 1)."""
    try:
        return subprocess.run(
            ["kubectl", "--namespace", NAMESPACE, *args],
            check=check,
            capture_output=True,
            text=True,
            input=stdin,
            timeout=120,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        stderr = getattr(exc, "stderr", "")
        pytest.fail(f"kubectl {' '.join(args)} failed (make e2e installs kubectl): {exc} {stderr}")


def in_executor(*command: str, stdin: str | None = None) -> str:
    """A command in the executor's container (it mounts the whole workspace at /workspace)."""
    return kubectl("exec", "-i", f"deploy/{RELEASE}-executor", "-c", "executor", "--", *command, stdin=stdin)


def put_file(username: str, relative: str, text: str) -> None:
    """A file into <workspace>/<username>/, as the user would save it from JupyterHub."""
    script = (
        "import os, sys; path = sys.argv[1]; os.makedirs(os.path.dirname(path), exist_ok=True); "
        "open(path, 'w').write(sys.stdin.read())"
    )
    in_executor("python", "-c", script, f"/workspace/{username}/{relative}", stdin=text)


def _client_secret() -> str:
    secret = os.environ.get("NBP_E2E_CLIENT_SECRET")
    if secret:
        return secret
    out = kubectl("get", "secret", "nbp-oidc-clients", "-o", "json")
    return base64.b64decode(json.loads(out)["data"]["nbp-executor"]).decode()


@pytest.fixture(scope="session")
def base_url() -> str:
    return BASE_URL


@pytest.fixture(scope="session")
def superset_url() -> str:
    scheme, _, host = BASE_URL.partition("://")
    return f"{scheme}://superset.{host}"


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    verify = os.environ.get("NBP_E2E_VERIFY_TLS", "1") != "0"
    with httpx.Client(timeout=60, verify=verify, follow_redirects=False) as client:
        yield client


@pytest.fixture(scope="session")
def token(http: httpx.Client) -> str:
    url = f"{BASE_URL}/auth/realms/notebook-platform/protocol/openid-connect/token"
    username, password = os.environ.get("NBP_E2E_USERNAME"), os.environ.get("NBP_E2E_PASSWORD")
    if username and password:
        form = {
            "grant_type": "password",
            "client_id": "nbp-cli",
            "username": username,
            "password": password,
            "scope": "openid",
        }
    else:
        form = {
            "grant_type": "client_credentials",
            "client_id": "nbp-executor",
            "client_secret": _client_secret(),
        }
    deadline = time.monotonic() + 300
    while True:
        response = http.post(url, data=form)
        if response.status_code == 200:
            return str(response.json()["access_token"])
        if time.monotonic() > deadline:
            pytest.fail(f"no token from {url}: {response.status_code} {response.text[:300]}")
        time.sleep(5)


@pytest.fixture(scope="session")
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def username(token: str) -> str:
    """Whose runs the tests make: the token's user (its folder is <workspace>/<username>)."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["preferred_username"])


def answer(response: httpx.Response, *expected: int) -> Any:
    """The JSON body of a response whose status is one of `expected`."""
    assert response.status_code in expected, (
        f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:500]}"
    )
    return response.json()
