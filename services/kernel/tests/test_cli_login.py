"""``nbp login`` against the real Keycloak: the device flow, completed by this test in Keycloak's own
pages with a headless Chromium, tokens cached with mode 0600, used, refreshed, and forgotten on logout."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

from tests.support.browser import keycloak_sign_in_async, launch_options
from tests.support.keycloak import LocalKeycloak, keycloak, secured_platform

__all__ = ["keycloak"]  # the session fixture, imported for pytest

pytestmark = pytest.mark.timeout(300)

NBP = str(Path(sys.executable).with_name("nbp"))


@pytest.fixture
async def secured(
    keycloak: LocalKeycloak, database_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """The whole platform verifying Keycloak's tokens, on a real port."""
    async with secured_platform(keycloak, database_url, tmp_path / "workspace", monkeypatch) as url:
        yield url


async def nbp(env: dict[str, str], *args: str, expect: int = 0) -> Any:
    process = await asyncio.create_subprocess_exec(
        NBP, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == expect, f"nbp {' '.join(args)}: {process.returncode}\n{stdout!r}\n{stderr!r}"
    return json.loads(stdout) if "--json" in args and expect == 0 else stderr.decode()


async def approve_in_keycloak(link: str, username: str, password: str) -> str:
    """Open the device link in Chromium, sign in, grant access; the text of Keycloak's last page."""
    return await _in_chromium(link, username, password, grant=True)


async def sign_in_in_keycloak(link: str, username: str, password: str) -> str:
    """Open the sign-in link in Chromium and sign in; the text of the page the redirect lands on."""
    return await _in_chromium(link, username, password, grant=False)


async def _in_chromium(link: str, username: str, password: str, *, grant: bool) -> str:
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:  # never a skip: say how to install it
        raise AssertionError("the playwright package is missing: run `make venv`") from exc
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**launch_options())
        try:
            page = await browser.new_page()
            await page.goto(link)
            await keycloak_sign_in_async(page, username, password)
            if grant:
                # Keycloak asks the person to grant the device access (its consent page for the device flow).
                accept = page.locator("input[name=accept], button[name=accept]")
                await accept.first.wait_for(timeout=30_000)
                await accept.first.click()
                await page.wait_for_load_state()
            else:
                await page.wait_for_url("http://127.0.0.1:*/callback?*", timeout=30_000)
            return await page.inner_text("body")
        finally:
            await browser.close()


async def test_device_login_caches_refreshes_and_forgets_tokens(
    secured: str, keycloak: LocalKeycloak, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    env = {**os.environ, "NBP_URL": secured, "NBP_CONFIG_DIR": str(config)}
    env.pop("NBP_TOKEN", None)

    # Before signing in, the API says who is missing and the CLI says what to do.
    refused = await nbp(env, "notebooks", "list", expect=4)
    assert "nbp login" in refused

    login = await asyncio.create_subprocess_exec(
        NBP,
        "login",
        "--device",
        "--json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert login.stdout is not None
    first = json.loads(await asyncio.wait_for(login.stdout.readline(), 60))
    assert first["user_code"]
    assert first["verification_uri_complete"].startswith(keycloak.issuer)
    page_text = await approve_in_keycloak(first["verification_uri_complete"], "alice", keycloak.user_password)
    rest, errors = await asyncio.wait_for(login.communicate(), 120)
    assert login.returncode == 0, (rest, errors, page_text)
    assert json.loads(rest) == {"server": secured, "username": "alice"}

    cache = config / "credentials.json"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.stat().st_mode) == 0o700
    stored = json.loads(cache.read_text())
    assert stored["current"] == secured
    assert set(stored["servers"]) == {secured}

    who = await nbp(env, "whoami", "--json")
    assert (who["username"], who["groups"], who["signed_in"]) == ("alice", ["data-scientists"], True)
    created = await nbp(env, "notebooks", "register", "mine.ipynb", "--json")
    assert created["username"] == "alice"

    # An expired access token is refreshed with the cached refresh token, and the cache rewritten.
    stored["servers"][secured]["expires_at"] = 0
    cache.write_text(json.dumps(stored))
    listed = await nbp(env, "notebooks", "list", "--json")
    assert [n["id"] for n in listed] == [created["id"]]
    renewed = json.loads(cache.read_text())["servers"][secured]
    assert renewed["access_token"] != stored["servers"][secured]["access_token"]
    assert renewed["expires_at"] > 0
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600

    out = await nbp(env, "logout", "--json")
    assert out == {"server": secured, "signed_out": True}
    assert json.loads(cache.read_text())["servers"] == {}
    await nbp(env, "notebooks", "list", expect=4)


async def test_browser_login_receives_the_code_on_a_loopback_port(
    secured: str, keycloak: LocalKeycloak, tmp_path: Path
) -> None:
    env = {**os.environ, "NBP_URL": secured, "NBP_CONFIG_DIR": str(tmp_path / "config")}
    env.pop("NBP_TOKEN", None)
    login = await asyncio.create_subprocess_exec(
        NBP,
        "login",
        "--no-browser",
        "--json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert login.stderr is not None
    link = ""
    while not link.startswith("http"):
        link = (await asyncio.wait_for(login.stderr.readline(), 60)).decode().strip()
    assert link.startswith(f"{keycloak.issuer}/protocol/openid-connect/auth?")
    assert "code_challenge_method=S256" in link
    assert "state=" in link
    page_text = await sign_in_in_keycloak(link, "bob", keycloak.user_password)
    assert "Signed in to notebook-platform" in page_text
    rest, errors = await asyncio.wait_for(login.communicate(), 120)
    assert login.returncode == 0, (rest, errors)
    assert json.loads(rest) == {"server": secured, "username": "bob"}
    who = await nbp(env, "whoami", "--json")
    assert who["username"] == "bob"
