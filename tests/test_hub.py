"""JupyterHub in the platform, signed into through Keycloak's own form in a real browser (Debian's
chromium driven by Playwright): alice works in JupyterLab and runs her notebook through the API with the
token her server hands her; bob reaches nothing of hers; erin (no group) and a forged ``state`` are
refused.

The platform is ``make dev``'s supervisor (``nbp-platform``) on free ports, with the session's Keycloak.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from nbp_hub.keycloak_login import REFRESH_CHECK_SECONDS, REFRESH_MARGIN_SECONDS
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from websockets.sync.client import connect

from tests.support.browser import keycloak_sign_in, launch_options
from tests.support.common import free_port
from tests.support.keycloak import LocalKeycloak, keycloak, repo_root

__all__ = ["keycloak"]

ARTIFACTS = repo_root() / ".cache" / "test-artifacts"
SLOW_MS = 240_000  # a first server start on a loaded two-core machine


@dataclass
class RunningPlatform:
    hub: str
    api: str
    state: Path
    keycloak: LocalKeycloak

    @property
    def workspace(self) -> Path:
        return self.state / "workspace"


@pytest.fixture(scope="module")
def platform(keycloak: LocalKeycloak) -> Iterator[RunningPlatform]:
    state = Path(tempfile.mkdtemp(prefix="nbp-hub-test-"))
    # The session's Keycloak (its folder of the checkout's state): the platform reuses it.
    (state / "keycloak").symlink_to(repo_root() / ".nbp" / "keycloak")
    ports = {name: free_port() for name in ("API", "HUB", "HUB_API", "HUB_PROXY_API", "SUPERSET")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBP_") or k == "NBP_KEYCLOAK_PORT"}
    env.update({f"NBP_{name}_PORT": str(port) for name, port in ports.items()})
    env.update(NBP_STATE_DIR=str(state), NBP_SUPERSET_COMMAND="")
    log = state / "platform.log"
    command = [str(repo_root() / ".venv" / "bin" / "nbp-platform"), "--repo", str(repo_root())]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 400
        while "notebook-platform is up" not in log.read_text(errors="replace"):
            assert process.poll() is None, f"the platform exited:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"the platform did not come up:\n{log.read_text()[-4000:]}"
            time.sleep(1)
        yield RunningPlatform(
            f"http://127.0.0.1:{ports['HUB']}", f"http://127.0.0.1:{ports['API']}", state, keycloak
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=180)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(**launch_options())
        yield launched
        launched.close()


def sign_in(browser: Browser, platform: RunningPlatform, username: str) -> tuple[BrowserContext, Page]:
    """Keycloak's own form, from the hub's login button."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(SLOW_MS)
    page.goto(f"{platform.hub}/hub/login")
    page.click("a#login-main, a.btn-jupyter, a[href*='oauth_login']")
    page.wait_for_url(f"{platform.keycloak.issuer}/**")
    keycloak_sign_in(page, username, platform.keycloak.user_password)
    return context, page


def open_lab(browser: Browser, platform: RunningPlatform, username: str) -> tuple[BrowserContext, Page]:
    context, page = sign_in(browser, platform, username)
    page.wait_for_url(f"{platform.hub}/user/{username}/lab**")
    page.wait_for_selector(".jp-DirListing", state="visible")
    return context, page


def xsrf_cookie(context: BrowserContext, url: str) -> str:
    """The XSRF cookie the hub (path /hub/) or a user's server (/user/<name>/) set in this browser."""
    return next(c["value"] for c in context.cookies(url) if c["name"] == "_xsrf")


def hub_token(context: BrowserContext, platform: RunningPlatform, username: str) -> str:
    """A JupyterHub API token of the signed-in user, asked for from a hub page in their browser session
    (as the hub's own token page does: its XSRF token, their cookie)."""
    page = context.new_page()
    try:
        page.goto(f"{platform.hub}/hub/token")
        status, body = page.evaluate(
            """async (user) => {
                const response = await fetch(`${window.jhdata.base_url}api/users/${user}/tokens`, {
                    method: "POST",
                    headers: {"X-XSRFToken": window.jhdata.xsrf_token, "Content-Type": "application/json"},
                    body: JSON.stringify({note: "test", expires_in: 3600}),
                });
                return [response.status, await response.text()];
            }""",
            username,
        )
    finally:
        page.close()
    assert status == 201, body
    return str(json.loads(body)["token"])


class Kernel:
    """A kernel in a user's own server, driven over the Jupyter server's REST and WebSocket API."""

    def __init__(self, platform: RunningPlatform, username: str, token: str) -> None:
        self.base = f"{platform.hub}/user/{username}"
        self.headers = {"Authorization": f"token {token}"}
        self.username = username
        started = httpx.post(
            f"{self.base}/api/kernels", headers=self.headers, json={"name": "python3"}, timeout=120
        )
        assert started.status_code == 201, started.text
        self.id = started.json()["id"]
        ws_url = self.base.replace("http://", "ws://") + f"/api/kernels/{self.id}/channels"
        self.closing = contextlib.ExitStack()
        self.socket = self.closing.enter_context(
            connect(ws_url, additional_headers=self.headers, open_timeout=120, max_size=None)
        )
        self.session = uuid.uuid4().hex

    def run(self, code: str, timeout: float = 120) -> str:
        """Execute ``code``; what it printed (an exception's traceback fails the test)."""
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "username": self.username,
            "session": self.session,
            "msg_type": "execute_request",
            "version": "5.3",
            "date": datetime.now(UTC).isoformat(),
        }
        content = {"code": code, "silent": False, "store_history": False, "user_expressions": {}}
        content.update(allow_stdin=False, stop_on_error=True)
        message = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
        self.socket.send(json.dumps({**message, "channel": "shell", "buffers": []}))
        output: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = json.loads(self.socket.recv(timeout=timeout))
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = reply["msg_type"]
            if kind == "stream":
                output.append(reply["content"]["text"])
            elif kind == "error":
                raise AssertionError("\n".join(reply["content"]["traceback"]))
            elif kind == "status" and reply["content"]["execution_state"] == "idle":
                return "".join(output)
        raise AssertionError(f"no answer from the kernel within {timeout} s")

    def close(self) -> None:
        self.closing.close()
        httpx.delete(f"{self.base}/api/kernels/{self.id}", headers=self.headers, timeout=60)


def password_grant(keycloak: LocalKeycloak, username: str) -> str:
    """An access token from the dev realm's test client (Playwright's loop rules out asyncio.run here)."""
    form = {"grant_type": "password", "client_id": "nbp-test", "username": username}
    response = httpx.post(keycloak.token_url, data={**form, "password": keycloak.user_password}, timeout=60)
    response.raise_for_status()
    return str(response.json()["access_token"])


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def notebook_with_parameters() -> dict[str, Any]:
    def cell(source: str, tags: list[str] | None = None) -> dict[str, Any]:
        metadata = {"tags": tags} if tags else {}
        return {
            "cell_type": "code",
            "execution_count": None,
            "metadata": metadata,
            "outputs": [],
            "source": source,
        }

    return {
        "cells": [
            cell("n = 1", ["parameters"]),
            cell("import nbp\nnbp.record('double', n * 2)\nprint(n * 2)"),
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


# Run in alice's kernel: the notebook registers itself and runs itself as her, with the nbp client.
SELF_SERVICE = """
import json, os
import nbp
from nbp_hub.token import access_token
with nbp.Client() as client:
    notebook = client.register(
        "report.ipynb",
        name="report",
        parameters=[{"param_name": "n", "param_type": "int", "default_value": 5}],
    )
    run = client.run(notebook["id"], parameters={"n": 21})
    print(json.dumps({
        "cwd": os.getcwd(),
        "server": client.server,
        "user": client.username(),
        "notebook": notebook["id"],
        "run": client.run_status(run["id"]),
        "token": access_token(),
    }))
"""


@pytest.mark.timeout(1200)
def test_alice_signs_in_writes_a_notebook_and_runs_it_as_herself(
    platform: RunningPlatform, browser: Browser
) -> None:
    context, page = open_lab(browser, platform, "alice")
    try:
        # She saves a notebook with a `parameters` cell, in her session (her cookies, her server).
        xsrf = xsrf_cookie(context, f"{platform.hub}/user/alice/")
        saved = context.request.put(
            f"{platform.hub}/user/alice/api/contents/report.ipynb",
            headers={"X-XSRFToken": xsrf, "Content-Type": "application/json"},
            data=json.dumps({"type": "notebook", "format": "json", "content": notebook_with_parameters()}),
        )
        assert saved.status in (200, 201), saved.text()
        assert (platform.workspace / "alice" / "report.ipynb").is_file(), "her home is <workspace>/alice"

        # Inside her server the nbp client finds the API (NBP_URL, here not the default port) and her
        # current access token (from the hub: nobody pastes one); her notebook registers and runs itself.
        kernel = Kernel(platform, "alice", hub_token(context, platform, "alice"))
        try:
            inside = json.loads(kernel.run(SELF_SERVICE, timeout=600))
        finally:
            kernel.close()
        assert inside["cwd"] == "/home/alice"
        assert inside["server"] == platform.api
        assert inside["user"] == "alice"
        assert claims(inside["token"])["preferred_username"] == "alice"
        run = inside["run"]
        assert run["status"] == "completed", run
        assert run["username"] == "alice"
        assert run["results"][0]["value_numeric"] == 42.0
        output_path = run["output_path"]

        # The token from inside her server works on the API from anywhere, as alice.
        with httpx.Client(
            base_url=platform.api, headers={"Authorization": f"Bearer {inside['token']}"}, timeout=300
        ) as api:
            listed = api.get("/list-notebooks/alice")
            assert listed.status_code == 200, listed.text
            assert "report.ipynb" in [n["relative_path"] for n in listed.json()["notebooks"]]
            registered = api.get("/db/notebooks/user/alice")
            assert registered.status_code == 200, registered.text
            assert [n["id"] for n in registered.json()] == [inside["notebook"]]
            params = api.get(f"/db/parameters/notebook/{inside['notebook']}").json()
            assert [(p["param_name"], p["default_value"]) for p in params] == [("n", 5)]
        assert (platform.workspace / "alice" / output_path).is_file(), "the output lands in her folder"

        # JupyterLab shows it: listed in her folder, and open, with the run's output (2 * 21).
        page.goto(f"{platform.hub}/user/alice/lab/tree/{output_path}")
        page.wait_for_selector(".jp-DirListing", state="visible")
        # Its name shows in the tab that opened (and in the listing once that has caught up): a visible
        # one, since hidden side panels (running documents, the table of contents) carry it too.
        page.get_by_text(Path(output_path).name, exact=True).filter(visible=True).first.wait_for()
        page.locator(".jp-OutputArea-output").filter(has_text="42").first.wait_for(state="visible")
        news = page.get_by_role("button", name="No")  # JupyterLab asks once whether to fetch its news
        if news.count():
            news.first.click()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-alice.png"))

        # Signing out ends the Keycloak session too (its end-session endpoint).
        page.goto(f"{platform.hub}/hub/logout")
        page.wait_for_url(f"{platform.keycloak.issuer}/protocol/openid-connect/logout**")
    finally:
        context.close()


def realm_admin(keycloak: LocalKeycloak) -> httpx.Client:
    """The realm's admin REST API, signed in as Keycloak's admin (its tokens live a minute: one each use)."""
    form = {"grant_type": "password", "client_id": "admin-cli", "username": keycloak.admin_username}
    admin = httpx.post(
        f"{keycloak.url}/realms/master/protocol/openid-connect/token",
        data={**form, "password": keycloak.admin_password},
        timeout=60,
    )
    admin.raise_for_status()
    return httpx.Client(
        base_url=f"{keycloak.url}/admin/realms/{keycloak.realm}",
        headers={"Authorization": f"Bearer {admin.json()['access_token']}"},
        timeout=60,
    )


@contextlib.contextmanager
def hub_tokens_lasting(keycloak: LocalKeycloak, seconds: int) -> Iterator[None]:
    """Keycloak issues the hub's client (``jupyterhub``) access tokens of ``seconds`` while it lasts (the
    realm's own lifetime again afterwards): the client attribute ``access.token.lifespan``."""
    with realm_admin(keycloak) as api:
        client = api.get("/clients", params={"clientId": "jupyterhub"}).json()[0]
        before = dict(client.get("attributes") or {})
        changed = api.put(
            f"/clients/{client['id']}",
            json={**client, "attributes": {**before, "access.token.lifespan": str(seconds)}},
        )
        assert changed.status_code == 204, changed.text
    try:
        yield
    finally:
        restored = {**before, "access.token.lifespan": before.get("access.token.lifespan", "")}
        with realm_admin(keycloak) as api:
            api.put(f"/clients/{client['id']}", json={**client, "attributes": restored}).raise_for_status()


# Run in alice's kernel, twice on one client: the token the client sends now (the hub's), who it is, and
# whether the client's requests pass the API.
CURRENT_TOKEN = """
import json
from nbp.client.credentials import hub_token
print(json.dumps({"token": hub_token(), "user": client.username(), "notebooks": len(client.notebooks())}))
"""


@pytest.mark.timeout(900)
def test_the_token_inside_a_server_is_refreshed_before_it_expires(
    platform: RunningPlatform, browser: Browser
) -> None:
    # Tokens barely longer than the refresh margin: at the hub's next check of alice's sign-in the one
    # she has is "near expiry" and the hub must exchange it for a new one, before it expires.
    lifespan = REFRESH_MARGIN_SECONDS + 20
    with hub_tokens_lasting(platform.keycloak, lifespan):
        context, _ = open_lab(browser, platform, "alice")
        try:
            kernel = Kernel(platform, "alice", hub_token(context, platform, "alice"))
            try:
                kernel.run("import nbp\nclient = nbp.Client()")  # one long-lived client, as a notebook keeps
                first = json.loads(kernel.run(CURRENT_TOKEN))
                # The hub re-checks a user's sign-in at most every REFRESH_CHECK_SECONDS (since her sign-in,
                # or since the check the call above may have caused on a slow machine).
                time.sleep(REFRESH_CHECK_SECONDS + 5)
                second = json.loads(kernel.run(CURRENT_TOKEN))
                kernel.run("client.close()")
            finally:
                kernel.close()
        finally:
            context.close()
    issued, renewed = claims(first["token"]), claims(second["token"])
    assert issued["exp"] - issued["iat"] == lifespan, "the short lifetime applied to her sign-in"
    assert second["token"] != first["token"], "near its expiry the hub handed out a new token"
    assert renewed["exp"] > issued["exp"]
    assert renewed["exp"] - time.time() > REFRESH_MARGIN_SECONDS - REFRESH_CHECK_SECONDS
    assert renewed["preferred_username"] == "alice"
    # The same client object kept working with each token, as alice.
    assert first["user"] == second["user"] == "alice"
    assert first["notebooks"] == second["notebooks"]
    with httpx.Client(base_url=platform.api, timeout=60) as api:
        mine = api.get("/db/notebooks/user/alice", headers={"Authorization": f"Bearer {second['token']}"})
        assert mine.status_code == 200, mine.text


# Run in bob's own kernel: what of the machine can he see? (PATHS is prepended.)
PROBE = """
import base64, json, os, sys

def readable(path):
    try:
        with open(path, "rb") as f:
            return f.read(4096).decode(errors="replace")
    except OSError:
        return None

secrets, names = [], ("auth_state_key", "cookie_secret", "secrets.env")
skip = ("/proc", "/sys", "/usr", "/dev", sys.prefix, sys.base_prefix)
for root, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if not os.path.join(root, d).startswith(skip)]
    secrets += [os.path.join(root, f) for f in files if f in names]
environ = {}
for pid in os.listdir("/proc"):
    if pid.isdigit() and readable(f"/proc/{pid}/environ"):
        environ[pid] = readable(f"/proc/{pid}/environ")
from nbp_hub.token import access_token
payload = access_token().split(".")[1]
print(json.dumps({
    "home": os.listdir("/home"),
    "alice": readable("/home/alice/private.txt"),
    "workspace": os.path.exists(PATHS["workspace"]),
    "state": [p for p in PATHS["state"] if os.path.exists(p)],
    "found": secrets,
    "pids": [p for p in os.listdir("/proc") if p.isdigit()],
    "environ": environ,
    "token_user": json.loads(base64.urlsafe_b64decode(payload + "==="))["preferred_username"],
}))
"""


def leaked_names(variables: list[str]) -> list[str]:
    """The names among ``NAME=value`` lines a user's code must never see: secrets, the proxy's token, and
    every platform setting but the API's address."""
    names = [line.partition("=")[0] for line in variables if "=" in line]
    return [
        name
        for name in names
        if "SECRET" in name
        or "PASSWORD" in name
        or name.startswith("CONFIGPROXY")
        or (name.startswith("NBP_") and name != "NBP_URL")
    ]


@pytest.mark.timeout(1200)
def test_bob_reaches_nothing_of_alices(platform: RunningPlatform, browser: Browser) -> None:
    alice_folder = platform.workspace / "alice"
    alice_folder.mkdir(parents=True, exist_ok=True)
    (alice_folder / "private.txt").write_text("alice's")
    context, _ = open_lab(browser, platform, "bob")
    try:
        # By URL: alice's server is not his.
        answer = context.request.get(f"{platform.hub}/user/alice/api/contents", max_redirects=0)
        assert answer.status in (302, 403, 404), answer.status
        assert "alice's" not in answer.text()
        token = hub_token(context, platform, "bob")
        refused = httpx.get(
            f"{platform.hub}/user/alice/api/contents/private.txt",
            headers={"Authorization": f"token {token}"},
            timeout=60,
        )
        assert refused.status_code in (302, 403, 404), refused.status_code

        kernel = Kernel(platform, "bob", token)
        try:
            paths = {
                "workspace": str(platform.workspace),
                "state": [str(platform.state), str(platform.state / "hub"), str(repo_root() / ".nbp")],
            }
            seen = json.loads(kernel.run(f"PATHS = {json.dumps(paths)}\n{PROBE}", timeout=300))
        finally:
            kernel.close()
        assert seen["home"] == ["bob"]
        assert seen["alice"] is None
        assert seen["workspace"] is False
        assert seen["state"] == []
        assert seen["found"] == []
        assert seen["token_user"] == "bob"
        # Only the sandbox's own processes, and no secret in any environment he can read.
        assert len(seen["pids"]) < 20, seen["pids"]
        for data in seen["environ"].values():
            assert leaked_names(data.split("\0")) == [], "no secret and no platform setting but NBP_URL"

        # Through the API with his own token: alice's files and records are not his.
        bob = {"Authorization": f"Bearer {password_grant(platform.keycloak, 'bob')}"}
        with httpx.Client(base_url=platform.api, headers=bob, timeout=60) as api:
            assert api.get("/list-notebooks/alice").status_code == 403
            assert api.get("/db/notebooks/user/alice").status_code == 403
    finally:
        context.close()


class Terminal:
    """A terminal in a user's own server (Jupyter's terminals API: a shell on a pseudo-terminal)."""

    def __init__(self, platform: RunningPlatform, username: str, token: str) -> None:
        self.base = f"{platform.hub}/user/{username}"
        self.headers = {"Authorization": f"token {token}"}
        started = httpx.post(f"{self.base}/api/terminals", headers=self.headers, timeout=120)
        assert started.status_code == 200, started.text
        self.name = started.json()["name"]
        ws_url = self.base.replace("http://", "ws://") + f"/terminals/websocket/{self.name}"
        self.closing = contextlib.ExitStack()
        self.socket = self.closing.enter_context(
            connect(ws_url, additional_headers=self.headers, open_timeout=120, max_size=None)
        )

    def run(self, script: str, timeout: float = 300) -> list[str]:
        """Type ``script`` into the shell; the lines it printed. They come back as one base64 line between
        BEGIN and END: the terminal also echoes what is typed, and shows prompts, which never match."""
        typed = f'echo "BEG""IN$( ( {script} ) 2>&1 | base64 -w0 )EN""D"\n'
        self.socket.send(json.dumps(["stdin", typed]))
        screen = ""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            kind, *content = json.loads(self.socket.recv(timeout=timeout))
            if kind == "stdout":
                screen += content[0]
            printed = re.search(r"BEGIN([A-Za-z0-9+/=]*)END", screen)
            if printed:
                return base64.b64decode(printed.group(1)).decode().splitlines()
        raise AssertionError(f"the terminal did not finish within {timeout} s:\n{screen[-3000:]}")

    def close(self) -> None:
        self.closing.close()
        httpx.delete(f"{self.base}/api/terminals/{self.name}", headers=self.headers, timeout=60)


# Typed into bob's terminal: the same questions as PROBE, in a shell (WORKSPACE, STATE, PREFIX replaced).
TERMINAL_PROBE = """
echo "home: $(ls -A /home | tr '\\n' ' ')"
cat /home/alice/private.txt 2>/dev/null || echo "alice: unreadable"
ls WORKSPACE >/dev/null 2>&1 && echo "workspace: visible" || echo "workspace: absent"
for p in STATE; do test -e "$p" && echo "state: $p"; done
find / \\( -path /proc -o -path /sys -o -path /usr -o -path /dev -o -path PREFIX \\) -prune \\
  -o \\( -name auth_state_key -o -name cookie_secret -o -name secrets.env \\) -print 2>/dev/null \\
  | sed 's/^/found: /'
echo "pids: $(ls /proc | grep -c '^[0-9]')"
cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | sed 's/=.*//' | sort -u | sed 's/^/variable: /'
"""


@pytest.mark.timeout(900)
def test_bob_reaches_nothing_of_alices_from_a_terminal(platform: RunningPlatform, browser: Browser) -> None:
    """A terminal is not a kernel: a shell of its own, on a pseudo-terminal. It is confined the same."""
    alice_folder = platform.workspace / "alice"
    alice_folder.mkdir(parents=True, exist_ok=True)
    (alice_folder / "private.txt").write_text("alice's")
    context, _ = open_lab(browser, platform, "bob")
    try:
        terminal = Terminal(platform, "bob", hub_token(context, platform, "bob"))
        try:
            state = [str(platform.state), str(platform.state / "hub"), str(repo_root() / ".nbp")]
            script = (
                TERMINAL_PROBE.replace("WORKSPACE", str(platform.workspace))
                .replace("STATE", " ".join(state))
                .replace("PREFIX", sys.prefix)
            )
            lines = terminal.run(script)
        finally:
            terminal.close()
    finally:
        context.close()
    said = dict(line.split(": ", 1) for line in lines if ": " in line and not line.startswith("variable"))
    assert said["home"].split() == ["bob"], lines
    assert said["alice"] == "unreadable", lines
    assert said["workspace"] == "absent", lines
    assert not [line for line in lines if line.startswith(("state:", "found:"))], lines
    assert int(said["pids"]) < 20, lines
    variables = [line.removeprefix("variable: ") + "=" for line in lines if line.startswith("variable: ")]
    assert "JUPYTERHUB_USER=" in variables, "the terminal's shell saw the server's environment"
    assert leaked_names(variables) == [], lines


@pytest.mark.timeout(600)
def test_erin_without_a_group_is_refused(platform: RunningPlatform, browser: Browser) -> None:
    context, page = sign_in(browser, platform, "erin")
    try:
        page.wait_for_url(f"{platform.hub}/hub/**")
        assert "/user/erin" not in page.url
        assert page.get_by_text("403").first.is_visible() or "Forbidden" in page.content()
        whoami = context.request.get(f"{platform.hub}/hub/api/user")
        assert whoami.status == 403
    finally:
        context.close()
    assert not (platform.workspace / "erin").exists()


@pytest.mark.timeout(600)
def test_a_forged_state_is_refused(platform: RunningPlatform, browser: Browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(SLOW_MS)
    try:
        page.goto(f"{platform.hub}/hub/oauth_login")  # the hub sets its state cookie, then Keycloak's form
        page.wait_for_url(f"{platform.keycloak.issuer}/**")
        forged = page.goto(f"{platform.hub}/hub/oauth_callback?code=forged&state=forged")
        assert forged is not None
        assert forged.status in (400, 403), forged.status
        assert context.request.get(f"{platform.hub}/hub/api/user").status == 403
    finally:
        context.close()
