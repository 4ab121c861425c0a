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

import httpx
import pytest

BASE_URL = os.environ.get("NBP_E2E_URL", "").rstrip("/")

if not BASE_URL:
    collect_ignore_glob = ["test_*.py"]


def _client_secret() -> str:
    secret = os.environ.get("NBP_E2E_CLIENT_SECRET")
    if secret:
        return secret
    namespace = os.environ.get("NBP_E2E_NAMESPACE", "notebook-platform")
    try:
        out = subprocess.run(
            ["kubectl", "-n", namespace, "get", "secret", "nbp-oidc-clients", "-o", "json"],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"set NBP_E2E_CLIENT_SECRET, or make kubectl able to read Secret nbp-oidc-clients: {exc}")
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
