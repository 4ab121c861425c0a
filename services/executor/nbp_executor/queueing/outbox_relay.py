"""The outbox relay: every event the executor wrote reaches the history service, in order per run.

Rows are taken with ``FOR UPDATE SKIP LOCKED`` (several executor processes relay side by side) and
only the oldest undelivered row of each run is eligible, so a run's events arrive in the order they
were written. The history answers ``applied``, ``stale`` or ``duplicate``; all three mean "delivered".
A failure (history down, a 5xx) is retried with exponential backoff; nothing is ever dropped.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from nbp_executor.models import OutboxEvent
from nbp_executor.queueing import wakeups
from nbp_executor.queueing.wakeups import Notifications

logger = logging.getLogger("nbp.executor.relay")

ACCEPTED = frozenset({"applied", "stale", "duplicate"})


class Relay:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        history_url: str,
        notifications: Notifications,
        batch: int,
        max_backoff: float,
        poll: float,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.http = http
        self.url = history_url.rstrip("/") + "/internal/events"
        self.notifications = notifications
        self.batch = batch
        self.max_backoff = max_backoff
        self.poll = poll

    async def run(self) -> None:
        signal = self.notifications[wakeups.OUTBOX]
        while True:
            ticket = signal.ticket()
            try:
                sent = await self.relay_once()
            except Exception:
                logger.exception("outbox relay pass failed")
                sent = 0
            if sent:
                continue
            try:
                delay = await self._next_due()
            except Exception:
                delay = self.poll
            await signal.wait(ticket, min(self.poll, delay))

    async def _next_due(self) -> float:
        async with self.sessionmaker() as session:
            seconds = await session.scalar(
                select(func.extract("epoch", func.min(OutboxEvent.next_attempt_at) - func.now())).where(
                    OutboxEvent.delivered_at.is_(None)
                )
            )
        return self.poll if seconds is None else max(0.05, float(seconds))

    async def relay_once(self) -> int:
        """Deliver what is due; the number of rows delivered."""
        earlier = aliased(OutboxEvent)
        async with self.sessionmaker() as session, session.begin():
            rows = (
                await session.scalars(
                    select(OutboxEvent)
                    .where(
                        OutboxEvent.delivered_at.is_(None),
                        OutboxEvent.next_attempt_at <= func.now(),
                        ~select(earlier.id)
                        .where(
                            earlier.job_id == OutboxEvent.job_id,
                            earlier.delivered_at.is_(None),
                            earlier.id < OutboxEvent.id,
                        )
                        .exists(),
                    )
                    .order_by(OutboxEvent.id)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            outcomes = await asyncio.gather(*(self._deliver(row) for row in rows))
            delivered = [row.id for row, error in zip(rows, outcomes, strict=True) if error is None]
            if delivered:
                await session.execute(
                    update(OutboxEvent)
                    .where(OutboxEvent.id.in_(delivered))
                    .values(delivered_at=func.now(), attempts=OutboxEvent.attempts + 1, last_error=None)
                )
            for row, error in zip(rows, outcomes, strict=True):
                if error is not None:
                    backoff = min(self.max_backoff, 0.25 * 2 ** min(row.attempts, 20))
                    await session.execute(
                        update(OutboxEvent)
                        .where(OutboxEvent.id == row.id)
                        .values(
                            attempts=OutboxEvent.attempts + 1,
                            next_attempt_at=func.now() + timedelta(seconds=backoff),
                            last_error=error[:2000],
                        )
                    )
            failed = len(rows) - len(delivered)
            if failed:
                logger.warning("history did not take %d event(s); retrying with backoff", failed)
            return len(delivered)

    async def _deliver(self, row: OutboxEvent) -> str | None:
        """None when the history has the event; otherwise why not."""
        try:
            response = await self.http.post(self.url, json=row.payload)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if response.status_code == 200:
            try:
                outcome = response.json().get("outcome")
            except ValueError:
                outcome = None
            if outcome in ACCEPTED:
                return None
            return f"unexpected answer: {response.text[:500]}"
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            logger.error(
                "history refused event %s (HTTP %d): %s", row.event_id, response.status_code, response.text
            )
        return f"HTTP {response.status_code}: {response.text[:500]}"
