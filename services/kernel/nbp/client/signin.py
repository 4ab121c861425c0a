"""Signing in to the platform's Keycloak with its public client ``nbp-cli``: the device flow (a code to
enter on any device's browser) and the browser flow (authorization code + PKCE on a loopback redirect,
RFC 8252). Keycloak applies the client's PKCE rule to the device request too, so both send a challenge."""

from __future__ import annotations

import base64
import hashlib
import http.server
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from nbp.client.credentials import StoredLogin, normalise_server
from nbp.client.errors import SignInError

CLI_CLIENT_ID = "nbp-cli"
SCOPE = "openid"


@dataclass(frozen=True)
class Realm:
    """Where to sign in for a server: its Keycloak realm (issuer) and the CLI's client there."""

    server: str
    issuer: str
    client_id: str = CLI_CLIENT_ID

    @property
    def endpoints(self) -> str:
        return f"{self.issuer}/protocol/openid-connect"


def discover(server: str, issuer: str | None = None, timeout: float = 30.0) -> Realm:
    """The realm a server trusts, as its ``GET /`` says (or ``issuer`` when given)."""
    server = normalise_server(server)
    client_id = CLI_CLIENT_ID
    if issuer is None:
        try:
            info = httpx.get(f"{server}/", timeout=timeout).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInError(f"{server} did not answer: {exc}") from exc
        auth = info.get("auth") if isinstance(info, dict) else None
        if not auth:
            raise SignInError(f"{server} does not ask for sign-in (it runs without Keycloak): nothing to do")
        issuer = str(auth["issuer"])
        client_id = str(auth.get("cli_client_id") or CLI_CLIENT_ID)
    return Realm(server, issuer.rstrip("/"), client_id)


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass(frozen=True)
class DeviceCode:
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int
    device_code: str
    code_verifier: str


def start_device_flow(realm: Realm, timeout: float = 30.0) -> DeviceCode:
    verifier, challenge = _pkce()
    response = httpx.post(
        f"{realm.endpoints}/auth/device",
        data={
            "client_id": realm.client_id,
            "scope": SCOPE,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        timeout=timeout,
    )
    if response.status_code != 200:
        raise SignInError(
            f"Keycloak refused the device sign-in ({response.status_code}): {response.text[:300]}"
        )
    body = response.json()
    return DeviceCode(
        user_code=body["user_code"],
        verification_uri=body["verification_uri"],
        verification_uri_complete=body.get("verification_uri_complete"),
        expires_in=int(body.get("expires_in", 600)),
        interval=int(body.get("interval", 5)),
        device_code=body["device_code"],
        code_verifier=verifier,
    )


def finish_device_flow(
    realm: Realm, code: DeviceCode, *, sleep: Callable[[float], None] = time.sleep, timeout: float = 30.0
) -> StoredLogin:
    """Poll until the person has approved (or denied) the code in the browser."""
    interval = float(code.interval)
    deadline = time.monotonic() + code.expires_in
    while time.monotonic() < deadline:
        response = httpx.post(
            f"{realm.endpoints}/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "client_id": realm.client_id,
                "device_code": code.device_code,
                "code_verifier": code.code_verifier,
            },
            timeout=timeout,
        )
        body: dict[str, Any] = response.json()
        if response.status_code == 200:
            return StoredLogin.from_token_response(realm.server, realm.issuer, realm.client_id, body)
        error = body.get("error")
        if error == "authorization_pending":
            sleep(interval)
        elif error == "slow_down":
            interval += 5
            sleep(interval)
        elif error == "access_denied":
            raise SignInError("sign-in was denied in the browser")
        elif error == "expired_token":
            break
        else:
            raise SignInError(f"Keycloak refused the sign-in: {error}: {body.get('error_description', '')}")
    raise SignInError("the device code expired before it was approved: run `nbp login` again")


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    received: dict[str, str]
    done: threading.Event

    def do_GET(self) -> None:
        parsed = urllib.parse.urlparse(self.path)
        if parsed.path != "/callback":
            self.send_error(404)
            return
        self.server.received.update(dict(urllib.parse.parse_qsl(parsed.query)))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(
            b"<html><body><p>Signed in to notebook-platform. You can close this tab.</p></body></html>"
        )
        self.server.done.set()  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        return  # the terminal shows the CLI's own messages, not the callback's request log


def browser_flow(
    realm: Realm, open_url: Callable[[str], object], *, wait_seconds: float = 300.0, timeout: float = 30.0
) -> StoredLogin:
    """Open Keycloak's sign-in page (``open_url``), receive the code on a loopback port, exchange it."""
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(32)
    server = http.server.HTTPServer(("127.0.0.1", 0), _CallbackHandler)
    server.received = {}  # type: ignore[attr-defined]
    server.done = threading.Event()  # type: ignore[attr-defined]
    redirect_uri = f"http://127.0.0.1:{server.server_port}/callback"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        query = urllib.parse.urlencode(
            {
                "client_id": realm.client_id,
                "response_type": "code",
                "scope": SCOPE,
                "redirect_uri": redirect_uri,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        open_url(f"{realm.endpoints}/auth?{query}")
        if not server.done.wait(wait_seconds):  # type: ignore[attr-defined]
            raise SignInError(f"no answer from the browser within {wait_seconds:.0f} s")
        received: dict[str, str] = server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
    # The state ties the answer to this request: an answer to anybody else's is refused.
    if not secrets.compare_digest(received.get("state", ""), state):
        raise SignInError("the browser's answer does not carry this sign-in's state; refused")
    if "code" not in received:
        raise SignInError(
            f"Keycloak did not sign you in: {received.get('error_description') or received.get('error')}"
        )
    response = httpx.post(
        f"{realm.endpoints}/token",
        data={
            "grant_type": "authorization_code",
            "client_id": realm.client_id,
            "code": received["code"],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        timeout=timeout,
    )
    if response.status_code != 200:
        raise SignInError(f"Keycloak refused the code ({response.status_code}): {response.text[:300]}")
    return StoredLogin.from_token_response(realm.server, realm.issuer, realm.client_id, response.json())


def revoke(login: StoredLogin, timeout: float = 30.0) -> None:
    """End the session in Keycloak (its refresh token stops working); best effort."""
    if not login.refresh_token:
        return
    try:
        httpx.post(
            f"{login.issuer}/protocol/openid-connect/logout",
            data={"client_id": login.client_id, "refresh_token": login.refresh_token},
            timeout=timeout,
        )
    except httpx.HTTPError:
        return
