"""The executor's background work, started with its app (a lifespan hook): the LISTEN connection, the
warm kernel pool, N workers, the reaper and the outbox relay."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI, Request
from nbp_common.auth import AuthSettings, ServiceTokenProvider
from nbp_common.db import Database
from nbp_common.settings import Settings

from nbp_executor.clients import Registry, build_http_client
from nbp_executor.notifications.delivery import Deliverer
from nbp_executor.notifications.settings import NotifySettings, SmtpSettings
from nbp_executor.queueing.outbox_relay import Relay
from nbp_executor.queueing.wakeups import Notifications
from nbp_executor.queueing.worker import Context, Reaper, Worker
from nbp_executor.runners import PodRunner, Runner, build_runner
from nbp_executor.schedules.firing import Scheduler
from nbp_executor.schedules.settings import SchedulerSettings
from nbp_executor.settings import ExecutorSettings, process_identity

logger = logging.getLogger("nbp.executor")


@dataclass
class ExecutorRuntime:
    settings: ExecutorSettings
    database: Database
    http: httpx.AsyncClient
    registry: Registry
    notifications: Notifications
    runner: Runner | PodRunner
    workers: list[Worker] = field(default_factory=list)


def get_runtime(request: Request) -> ExecutorRuntime:
    runtime: ExecutorRuntime = request.app.state.executor
    return runtime


PR_SET_DUMPABLE = 4


def make_undumpable() -> None:
    """Defence in depth behind the sandbox: no process of the executor's user may read this one's
    memory or ``/proc/<pid>/environ`` (nor attach a debugger to it)."""
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        logger.warning("could not mark the executor non-dumpable (errno %d)", ctypes.get_errno())


@asynccontextmanager
async def executor_runtime(app: FastAPI) -> AsyncIterator[None]:
    make_undumpable()
    settings = ExecutorSettings()
    common: Settings = app.state.settings
    database: Database = app.state.database
    settings.workspace.mkdir(parents=True, exist_ok=True)
    # With Keycloak, calls to the registry and the history carry the executor's own token (client
    # credentials); missing credentials stop the start-up here, not at the first run.
    auth = AuthSettings()
    runner = build_runner(settings, auth)  # a runner that may not run here stops the start-up too
    tokens = ServiceTokenProvider.from_settings(auth) if auth.auth == "keycloak" else None
    http = build_http_client(settings, auth=tokens)
    notifications = Notifications(
        common.sqlalchemy_url.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    await notifications.start()
    if settings.executor_workers:
        runner.start()
    runtime = ExecutorRuntime(
        settings, database, http, Registry(http, settings.registry_url), notifications, runner
    )
    app.state.executor = runtime
    ctx = Context(settings, database.sessionmaker, notifications, runner)
    tasks: list[asyncio.Task[None]] = []
    identity = process_identity()
    if settings.executor_workers and not isinstance(runner, PodRunner):
        runner.warm(settings.executor_default_kernel)
    for n in range(settings.executor_workers):
        worker = Worker(ctx, f"{identity}:{n}")
        runtime.workers.append(worker)
        tasks.append(asyncio.create_task(worker.run(), name=f"nbp-worker-{n}"))
    tasks.append(asyncio.create_task(Reaper(ctx, identity).run(), name="nbp-reaper"))
    relay = Relay(
        database.sessionmaker,
        http,
        settings.history_url,
        notifications,
        settings.executor_relay_batch,
        settings.executor_relay_max_backoff_seconds,
        settings.executor_poll_seconds,
    )
    tasks.append(asyncio.create_task(relay.run(), name="nbp-relay"))
    scheduler = SchedulerSettings()
    if scheduler.enabled:
        firing = Scheduler(database.sessionmaker, settings, scheduler, notifications)
        tasks.append(asyncio.create_task(firing.run(), name="nbp-scheduler"))
    deliverer = Deliverer(database.sessionmaker, notifications, NotifySettings(), SmtpSettings())
    tasks.append(asyncio.create_task(deliverer.run(), name="nbp-notifications"))
    logger.info(
        "executor %s: %d worker(s), runner %s, %d warm kernel(s) per kernel name, workspace %s",
        identity,
        settings.executor_workers,
        runner.name,
        settings.kernel_pool_size,
        settings.workspace.resolve(),
    )
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        await runner.close()
        await deliverer.aclose()
        await notifications.close()
        await http.aclose()
        if tokens is not None:
            await tokens.aclose()
