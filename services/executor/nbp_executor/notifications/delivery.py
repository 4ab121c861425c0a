"""Sending the notification outbox: a :class:`Deliverer` in every executor process.

Rows are taken ``FOR UPDATE SKIP LOCKED`` (replicas share the work), sent concurrently, and marked
delivered, or retried after an exponential backoff (``NBP_NOTIFY_MIN/MAX_BACKOFF_SECONDS``) with the
error recorded; a delivery is never dropped. A webhook is a JSON POST signed with HMAC-SHA256:
``X-NBP-Signature: sha256=<hex of HMAC(secret, "<X-NBP-Timestamp>." + body)>``; any 2xx is delivered.
The webhook's URL (which may hold a secret) never appears in an error, a log line or an answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import smtplib
import time
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from nbp_executor.notifications.models import Channel, NotificationDelivery, NotificationRule
from nbp_executor.notifications.settings import NotifySettings, SmtpSettings
from nbp_executor.notifications.targets import RefusedAddress, pinned, redact
from nbp_executor.queueing.wakeups import NOTIFICATIONS, Notifications

logger = logging.getLogger("nbp.executor.notifications")

SIGNATURE = "X-NBP-Signature"
TIMESTAMP = "X-NBP-Timestamp"
DELIVERY = "X-NBP-Delivery"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class Deliverer:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        notifications: Notifications,
        settings: NotifySettings,
        smtp: SmtpSettings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.notifications = notifications
        self.settings = settings
        self.smtp = smtp
        # Its own client: the executor's (which carries the platform's service token) never calls a
        # user's URL; redirects are not followed.
        self.http = httpx.AsyncClient(timeout=settings.timeout_seconds, follow_redirects=False)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def run(self) -> None:
        signal = self.notifications[NOTIFICATIONS]
        while True:
            ticket = signal.ticket()
            delay = self.settings.poll_seconds
            try:
                if await self.deliver_once():
                    continue
                delay = min(delay, await self._next_due())
            except Exception:
                logger.exception("notification delivery pass failed")
            await signal.wait(ticket, delay)

    async def _next_due(self) -> float:
        async with self.sessionmaker() as session:
            seconds = await session.scalar(
                select(
                    func.extract("epoch", func.min(NotificationDelivery.next_attempt_at) - func.now())
                ).where(NotificationDelivery.delivered_at.is_(None))
            )
        return self.settings.poll_seconds if seconds is None else max(0.05, float(seconds))

    async def deliver_once(self) -> int:
        """Send what is due; the number of rows handled (delivered or rescheduled)."""
        async with self.sessionmaker() as session, session.begin():
            rows = (
                await session.execute(
                    select(NotificationDelivery, NotificationRule)
                    .join(NotificationRule, NotificationRule.id == NotificationDelivery.rule_id)
                    .where(
                        NotificationDelivery.delivered_at.is_(None),
                        NotificationDelivery.next_attempt_at <= func.now(),
                    )
                    .order_by(NotificationDelivery.id)
                    .limit(self.settings.batch)
                    .with_for_update(of=NotificationDelivery, skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            errors = await asyncio.gather(*(self._send(d, r) for d, r in rows))
            for (delivery, rule), error in zip(rows, errors, strict=True):
                values: dict[str, Any]
                if error is None:
                    values = {"delivered_at": func.now(), "last_error": None}
                else:
                    backoff = min(
                        self.settings.max_backoff_seconds,
                        self.settings.min_backoff_seconds * 2 ** min(delivery.attempts, 30),
                    )
                    values = {
                        "next_attempt_at": func.now() + timedelta(seconds=backoff),
                        "last_error": error[:2000],
                    }
                    logger.warning(
                        "notification %s (%s to %s) not delivered, retry in %.1f s: %s",
                        delivery.id,
                        rule.channel,
                        redact(rule.target) if rule.channel == Channel.WEBHOOK else rule.target,
                        backoff,
                        error,
                    )
                await session.execute(
                    update(NotificationDelivery)
                    .where(NotificationDelivery.id == delivery.id)
                    .values(attempts=NotificationDelivery.attempts + 1, **values)
                )
            return len(rows)

    async def _send(self, delivery: NotificationDelivery, rule: NotificationRule) -> str | None:
        """None once the receiver has it; otherwise why not (never containing a webhook's URL)."""
        try:
            if rule.channel == Channel.WEBHOOK:
                return await self._webhook(delivery, rule)
            return await asyncio.to_thread(self._email, delivery, rule)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            return (
                reason.replace(rule.target, redact(rule.target))
                if rule.channel == Channel.WEBHOOK
                else reason
            )

    async def _webhook(self, delivery: NotificationDelivery, rule: NotificationRule) -> str | None:
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP: timestamp,
            DELIVERY: str(delivery.id),
            SIGNATURE: signature(rule.signing_secret or "", timestamp, body),
        }
        try:
            url, host, extensions = await pinned(rule.target, self.settings.webhook_allowed_networks)
        except RefusedAddress as exc:
            return f"refused: {exc}"
        try:
            response = await self.http.post(
                url, content=body, headers={**headers, **host}, extensions=extensions
            )
        except httpx.HTTPError as exc:
            shown = redact(rule.target)
            return f"{type(exc).__name__}: {str(exc).replace(rule.target, shown).replace(str(url), shown)}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    def _email(self, delivery: NotificationDelivery, rule: NotificationRule) -> str | None:
        if self.smtp.host is None:
            return "e-mail is not configured (NBP_SMTP_HOST)"
        message = EmailMessage()
        message["Subject"] = str(delivery.payload.get("subject", "notebook-platform"))
        message["From"] = self.smtp.sender
        message["To"] = rule.target
        message.set_content(str(delivery.payload.get("text", "")))
        with smtplib.SMTP(self.smtp.host, self.smtp.port, timeout=self.smtp.timeout_seconds) as client:
            if self.smtp.starttls:
                client.starttls()
            if self.smtp.username and self.smtp.password:
                client.login(self.smtp.username, self.smtp.password.get_secret_value())
            client.send_message(message)
        return None
