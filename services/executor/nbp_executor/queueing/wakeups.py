"""In-process wake-ups driven by PostgreSQL ``LISTEN/NOTIFY``.

Writers ``NOTIFY`` inside their transaction (delivered at commit, to every executor process); one
asyncpg connection per process listens and wakes the local waiters: workers (a job was queued), the
relay (an event was written), long-polls (a run ended) and the worker running a run (cancel). Every
waiter also has a timeout, so a notification lost while the connection is re-established only costs
that timeout, never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable
from typing import Any

import asyncpg

logger = logging.getLogger("nbp.executor.wakeups")

JOBS = "nbp_executor_jobs"  # a job became claimable
OUTBOX = "nbp_executor_outbox"  # an outbox row was written
ENDED = "nbp_executor_ended"  # payload: the id of a run that reached a terminal state
CANCEL = "nbp_executor_cancel"  # payload: the id of a running run to cancel
SCHEDULES = "nbp_executor_schedules"  # a schedule was created or changed: its next fire time may be sooner
NOTIFICATIONS = "nbp_executor_notifications"  # a notification delivery was written
CHANNELS = (JOBS, OUTBOX, ENDED, CANCEL, SCHEDULES, NOTIFICATIONS)


class Signal:
    """Take a ``ticket()`` before checking the database, then ``wait(ticket)``: a fire in between is
    not missed."""

    def __init__(self) -> None:
        self._events: dict[Hashable, asyncio.Event] = {}

    def ticket(self, key: Hashable = None) -> asyncio.Event:
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = asyncio.Event()
        return event

    def fire(self, key: Hashable = None) -> None:
        event = self._events.pop(key, None)
        if event is not None:
            event.set()

    def fire_all(self) -> None:
        events, self._events = self._events, {}
        for event in events.values():
            event.set()

    @staticmethod
    async def wait(ticket: asyncio.Event, at_most: float) -> bool:
        try:
            await asyncio.wait_for(ticket.wait(), at_most)
        except TimeoutError:
            return False
        return True


class Notifications:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self.signals: dict[str, Signal] = {channel: Signal() for channel in CHANNELS}
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()

    def __getitem__(self, channel: str) -> Signal:
        return self.signals[channel]

    def _on_notify(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        signal = self.signals.get(channel)
        if signal is None:
            return
        if channel in (ENDED, CANCEL):
            with contextlib.suppress(ValueError):
                signal.fire(int(payload))
        else:
            signal.fire_all()

    def _on_terminate(self, _conn: Any) -> None:
        self._lost.set()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self._dsn)
        for channel in CHANNELS:
            await conn.add_listener(channel, self._on_notify)
        conn.add_termination_listener(self._on_terminate)
        self._conn = conn
        # Whatever was missed while not listening: let every waiter look again.
        for signal in self.signals.values():
            signal.fire_all()

    async def start(self) -> None:
        await self._connect()
        self._task = asyncio.create_task(self._supervise())

    async def _supervise(self) -> None:
        while True:
            await self._lost.wait()
            self._lost.clear()
            logger.warning("lost the LISTEN connection; reconnecting (waiters poll meanwhile)")
            while True:
                try:
                    await self._connect()
                    break
                except Exception as exc:
                    logger.warning("LISTEN reconnect failed: %s", exc)
                    await asyncio.sleep(1.0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)
