"""Notifications delivered to real local receivers: an HTTP server (the webhook: JSON with Slack's
``text``, HMAC-signed) and an SMTP server (aiosmtpd), including a receiver that is down and comes back
(the delivery is recorded as failed, retried with backoff, then delivered); a secret in a webhook URL is
never shown back; bad targets are refused with their field and rule and nothing is stored."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.support.common import free_port
from tests.support.executor import Platform

pytestmark = pytest.mark.timeout(300)

Notebook = Callable[..., Path]
SECRET_PATH = "/hooks/T0001/B0002/s3cr3t-t0ken"
SIGNING_SECRET = "a-signing-secret-of-some-length"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    """A real HTTP server on loopback that can be stopped and started again on the same port."""

    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(Received(dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 Message accepted for delivery"


class SmtpReceiver:
    """aiosmtpd on loopback; stopped and started again (a new controller) on the same port."""

    def __init__(self, box: Mailbox) -> None:
        self.box = box
        self.port = free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.box, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        # The receivers listen on loopback, which a webhook may reach only when allowed.
        patch.setenv("NBP_NOTIFY_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32")
        yield patch


@pytest.fixture(scope="module")
def mailbox(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[tuple[Mailbox, SmtpReceiver]]:
    box = Mailbox()
    controller = SmtpReceiver(box)
    port = controller.port
    controller.start()
    monkeypatch_module.setenv("NBP_SMTP_HOST", "127.0.0.1")
    monkeypatch_module.setenv("NBP_SMTP_PORT", str(port))
    monkeypatch_module.setenv("NBP_NOTIFY_MIN_BACKOFF_SECONDS", "0.2")
    monkeypatch_module.setenv("NBP_NOTIFY_MAX_BACKOFF_SECONDS", "1")
    try:
        yield box, controller
    finally:
        controller.stop()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def eventually(check: Callable[[], Any], within: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {within} s")
        await asyncio.sleep(0.1)


async def test_webhook_and_email_on_failure_then_recovery_with_a_receiver_down_and_back(
    mailbox: tuple[Mailbox, SmtpReceiver], platform: Platform, notebook: Notebook, receiver: HttpReceiver
) -> None:
    box, _ = mailbox
    notebook(
        platform.user("ned") / "flaky.ipynb",
        "if fail:\n    raise ValueError('boom')",
        parameters="fail = False",
    )
    created = await platform.client.post(
        "/schedules",
        json={
            "username": "ned",
            "notebook_path": "flaky.ipynb",
            "cron": "0 0 1 1 *",
            "parameters": {"fail": True},
        },
    )
    assert created.status_code == 201, created.text
    schedule_id = created.json()["id"]
    url = f"http://127.0.0.1:{receiver.port}{SECRET_PATH}?token=qs-secret"
    hook = await platform.client.post(
        "/notifications",
        json={
            "schedule_id": schedule_id,
            "channel": "webhook",
            "url": url,
            "triggers": ["failure", "recovery"],
            "signing_secret": SIGNING_SECRET,
        },
    )
    assert hook.status_code == 201, hook.text
    assert hook.json()["target"] == f"http://127.0.0.1:{receiver.port}/…"
    mail = await platform.client.post(
        "/notifications",
        json={
            "schedule_id": schedule_id,
            "channel": "email",
            "email": "ned@example.org",
            "triggers": ["failure", "success"],
        },
    )
    assert mail.status_code == 201, mail.text
    assert mail.json()["signing_secret"] is None
    for response in [
        await platform.client.get("/notifications"),
        await platform.client.get(f"/notifications/{hook.json()['id']}"),
    ]:
        assert "s3cr3t" not in response.text
        assert "qs-secret" not in response.text

    # A failure: both receivers get it.
    run = await platform.client.post(f"/schedules/{schedule_id}/run-now")
    assert (await platform.wait(run.json()["id"]))["status"] == "failed"
    [delivered] = await eventually(lambda: receiver.received)
    body = json.loads(delivered.body)
    assert body["event"] == "failure"
    assert "failed" in body["text"]
    assert body["execution"]["id"] == run.json()["id"]
    assert body["execution"]["schedule_id"] == schedule_id
    expected = hmac.new(
        SIGNING_SECRET.encode(),
        delivered.headers["X-NBP-Timestamp"].encode() + b"." + delivered.body,
        hashlib.sha256,
    ).hexdigest()
    assert delivered.headers["X-NBP-Signature"] == f"sha256={expected}"
    [first_mail] = await eventually(lambda: box.messages)
    parsed = message_from_bytes(first_mail)
    assert parsed["To"] == "ned@example.org"
    assert "failed" in parsed["Subject"]

    # The webhook's receiver goes down; the next run recovers: the delivery fails, is retried with
    # backoff (its error recorded, without the URL's secret), and arrives once the receiver is back.
    receiver.stop()
    assert (
        await platform.client.patch(f"/schedules/{schedule_id}", json={"parameters": {"fail": False}})
    ).status_code == 200
    run = await platform.client.post(f"/schedules/{schedule_id}/run-now")
    assert (await platform.wait(run.json()["id"]))["status"] == "completed"

    async def failing() -> dict[str, Any]:
        deliveries = (await platform.client.get(f"/notifications/{hook.json()['id']}/deliveries")).json()
        return deliveries[0]

    deadline = asyncio.get_running_loop().time() + 30
    latest = await failing()
    while latest["attempts"] < 2 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
        latest = await failing()
    assert latest["trigger"] == "recovery"
    assert latest["delivered_at"] is None
    assert latest["attempts"] >= 2
    assert latest["last_error"]
    assert "s3cr3t" not in latest["last_error"]
    assert "qs-secret" not in latest["last_error"]
    assert len(receiver.received) == 1

    receiver.start()
    await eventually(lambda: len(receiver.received) == 2)
    assert json.loads(receiver.received[1].body)["event"] == "recovery"
    delivered_again = await failing()
    assert delivered_again["delivered_at"] is not None
    # The e-mail rule asked for success, not recovery: a success message.
    await eventually(lambda: len(box.messages) == 2)
    assert "completed" in message_from_bytes(box.messages[1])["Subject"]


async def test_an_smtp_server_down_and_back_gets_the_message(
    mailbox: tuple[Mailbox, SmtpReceiver], platform: Platform, notebook: Notebook
) -> None:
    box, controller = mailbox
    notebook(platform.user("ola") / "ok.ipynb", "x = 1")
    response = await platform.client.post(
        "/db/notebooks", json={"name": "ola-ok", "file_path": "ok.ipynb", "username": "ola"}
    )
    notebook_id = response.json()["id"]
    rule = await platform.client.post(
        "/notifications",
        json={
            "notebook_id": notebook_id,
            "channel": "email",
            "email": "ola@example.org",
            "triggers": ["success"],
        },
    )
    assert rule.status_code == 201, rule.text
    before = len(box.messages)
    controller.stop()
    try:
        run = await platform.client.post("/executions", json={"notebook_id": notebook_id})
        assert (await platform.wait(run.json()["id"]))["status"] == "completed"

        async def attempts() -> int:
            rows = (await platform.client.get(f"/notifications/{rule.json()['id']}/deliveries")).json()
            return int(rows[0]["attempts"]) if rows and rows[0]["delivered_at"] is None else 0

        for _ in range(150):
            if await attempts() >= 2:
                break
            await asyncio.sleep(0.2)
        assert await attempts() >= 2
    finally:
        controller.start()
    await eventually(lambda: len(box.messages) == before + 1)
    assert message_from_bytes(box.messages[-1])["To"] == "ola@example.org"


async def test_bad_targets_are_refused_and_nothing_is_stored(
    mailbox: tuple[Mailbox, SmtpReceiver], platform: Platform, notebook: Notebook
) -> None:
    notebook(platform.user("pia") / "n.ipynb", "x = 1")
    created = await platform.client.post(
        "/schedules", json={"username": "pia", "notebook_path": "n.ipynb", "cron": "0 0 1 1 *"}
    )
    schedule_id = created.json()["id"]
    before = int((await platform.client.get("/notifications")).headers["X-Total-Count"])
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"channel": "webhook", "url": "ftp://example.org/x"}, "url", "http_url"),
        ({"channel": "webhook", "url": "javascript:alert(1)"}, "url", "http_url"),
        ({"channel": "webhook", "url": "http:///nohost"}, "url", "http_url"),
        ({"channel": "webhook"}, "url", "required"),
        # Not public, and not in the allowed networks (127.0.0.1/32 here): loopback, private, the
        # cloud metadata address (link-local), IPv6 loopback, an IPv4-mapped private address.
        ({"channel": "webhook", "url": "http://127.0.0.2:8080/h"}, "url", "public_address"),
        ({"channel": "webhook", "url": "http://10.0.0.7/h?token=s"}, "url", "public_address"),
        ({"channel": "webhook", "url": "http://169.254.169.254/latest/meta-data/"}, "url", "public_address"),
        ({"channel": "webhook", "url": "http://[::1]:9/h"}, "url", "public_address"),
        ({"channel": "webhook", "url": "https://[::ffff:192.168.1.1]/h"}, "url", "public_address"),
        ({"channel": "email", "email": "not-an-address"}, "email", "email"),
        (
            {"channel": "webhook", "url": "https://example.org/h", "triggers": ["sometimes"]},
            "triggers[0]",
            "enum",
        ),
    ]
    for extra, name, rule in cases:
        response = await platform.client.post("/notifications", json={"schedule_id": schedule_id, **extra})
        assert response.status_code == 422, (extra, response.text)
        assert {(e["field"], e["rule"]) for e in response.json()["errors"]} == {(name, rule)}, response.text
    missing = await platform.client.post(
        "/notifications", json={"schedule_id": 10**12, "channel": "webhook", "url": "https://example.org/h"}
    )
    assert missing.status_code == 404
    assert int((await platform.client.get("/notifications")).headers["X-Total-Count"]) == before


async def test_deleting_a_rule_with_deliveries_and_a_schedule_with_rules_and_runs(
    mailbox: tuple[Mailbox, SmtpReceiver], platform: Platform, notebook: Notebook
) -> None:
    """The delete paths with what hangs off them: a rule's deliveries go with it, a schedule's rules
    and fire records go with it (the database's ON DELETE CASCADE), its runs stay; nothing answers 500
    whatever the session has loaded before (the registry's lazy="raise" hazard)."""
    notebook(platform.user("del") / "tick.ipynb", "import nbp\nnbp.record('n', n)", parameters="n = 0")
    created = await platform.client.post(
        "/schedules", json={"username": "del", "notebook_path": "tick.ipynb", "cron": "0 6 * * *"}
    )
    assert created.status_code == 201, created.text
    schedule = f"/schedules/{created.json()['id']}"
    rules = []
    for _ in range(2):
        rule = await platform.client.post(
            "/notifications",
            json={
                "schedule_id": created.json()["id"],
                "channel": "email",
                "email": "del@example.org",
                "triggers": ["success"],
            },
        )
        assert rule.status_code == 201, rule.text
        rules.append(f"/notifications/{rule.json()['id']}")
    sent = len(mailbox[0].messages)
    run = await platform.client.post(f"{schedule}/run-now")
    assert run.status_code == 202, run.text
    assert (await platform.wait(run.json()["id"]))["status"] == "completed"
    await eventually(lambda: len(mailbox[0].messages) >= sent + 2)  # each rule's delivery made and sent
    assert len((await platform.client.get(f"{rules[0]}/deliveries")).json()) == 1

    assert (await platform.client.get(rules[0])).status_code == 200  # loaded in the session first
    assert (await platform.client.delete(rules[0])).status_code == 204
    assert (await platform.client.get(rules[0])).status_code == 404
    assert (await platform.client.get(f"{rules[0]}/deliveries")).status_code == 404
    assert (await platform.client.delete(rules[0])).status_code == 404

    assert (await platform.client.get(f"{schedule}/runs")).json()[0]["id"] == run.json()["id"]
    assert (await platform.client.delete(schedule)).status_code == 204
    assert (await platform.client.get(schedule)).status_code == 404
    assert (await platform.client.get(rules[1])).status_code == 404
    assert (await platform.client.get(f"/executions/{run.json()['id']}")).status_code == 200
