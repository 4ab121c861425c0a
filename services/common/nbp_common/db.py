"""The async engine (SQLAlchemy 2 over asyncpg) and the per-request session dependency."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import Dialect, MetaData, String, TypeDecorator, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn, memoized_property
from sqlalchemy.util.queue import AsyncAdaptedQueue, QueueCommon

from nbp_common.events import ExecutionStatus
from nbp_common.settings import Settings

T = TypeVar("T")

# Constraint names that Alembic can reproduce, so migrations and models never disagree about them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def schema_metadata(schema: str) -> MetaData:
    """The metadata of a service's declarative base: all its tables in one Postgres schema, its own."""
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def utc_json_sql(column: str) -> str:
    """SQL: a ``timestamptz`` as the JSON text of a UTC datetime, as pydantic writes one (microseconds
    always given), for answers PostgreSQL renders itself; NULL stays NULL."""
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


class StatusColumn(TypeDecorator[ExecutionStatus]):
    """A run's status column: ``VARCHAR(16)`` in the database (checked by ``STATUS_CHECK``), an
    ``ExecutionStatus`` in Python, both ways."""

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else ExecutionStatus(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> ExecutionStatus | None:
        return None if value is None else ExecutionStatus(value)


class FairQueue(asyncio.Queue[T]):
    """A FIFO hand-off queue: an item put while someone waits goes straight to the longest waiter, and
    nobody takes an item ahead of those already waiting.

    ``asyncio.Queue`` (and SQLAlchemy's pool over it, which first tries ``get_nowait``) lets a newcomer
    take a returned connection between the moment a waiter is woken and the moment it runs; the woken
    waiter then queues again at the back. Under load some requests lose that race over and over: at 32
    clients on a pool of 10, p50 14 ms but p99 ~1 s (issue 10). Handing the item over removes the race.
    """

    def put_nowait(self, item: T) -> None:
        while self._getters:  # type: ignore[attr-defined]
            getter: asyncio.Future[T] = self._getters.popleft()  # type: ignore[attr-defined]
            if not getter.done():
                getter.set_result(item)
                return
        super().put_nowait(item)

    def _waited_for(self) -> bool:
        return any(not getter.done() for getter in self._getters)  # type: ignore[attr-defined]

    def get_nowait(self) -> T:
        if self._waited_for():
            raise asyncio.QueueEmpty
        return super().get_nowait()

    async def get(self) -> T:
        if not self._waited_for() and not self.empty():
            return super().get_nowait()
        getter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._getters.append(getter)  # type: ignore[attr-defined]
        try:
            return await getter
        except asyncio.CancelledError:
            if getter.done() and not getter.cancelled():
                self.put_nowait(getter.result())  # handed over, but this waiter gave up: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._getters.remove(getter)  # type: ignore[attr-defined]
            raise


class _FairAsyncAdaptedQueue(AsyncAdaptedQueue[T]):
    @memoized_property
    def _queue(self) -> asyncio.Queue[T]:
        return FairQueue(maxsize=self.maxsize)


class FairAsyncQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio pool, with connections handed to waiters first come, first served."""

    _queue_class: type[QueueCommon[ConnectionPoolEntry]] = _FairAsyncAdaptedQueue


def _refuse_closed(
    dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
) -> None:
    """At checkout, a connection the server has closed (a restart, an idle timeout, a terminated backend)
    is replaced by a new one: asyncpg reads its socket all the time, so it knows without a round trip."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


class Database:
    """The engine and the two kinds of session every service uses.

    Connections rest in autocommit: a read, or a write that is one statement, is one round trip. A
    checked-out connection is not pinged (a round trip per request, a fifth of a read's cost at the
    registry's rate: bench/registry_throughput.py); one the server closed is replaced at checkout.
    ``sessionmaker`` sessions switch their connection to READ COMMITTED, so that several statements
    run in one transaction, all or nothing.
    """

    def __init__(self, settings: Settings) -> None:
        self.engine: AsyncEngine = create_async_engine(
            settings.sqlalchemy_url,
            poolclass=FairAsyncQueuePool,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            isolation_level="AUTOCOMMIT",
        )
        event.listen(self.engine.sync_engine, "checkout", _refuse_closed)
        self.sessionmaker = async_sessionmaker(
            self.engine.execution_options(isolation_level="READ COMMITTED"), expire_on_commit=False
        )
        self.autocommit_sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    def driver_connection(self) -> DriverConnection:
        """``async with database.driver_connection() as connection``: asyncpg's own, from the pool."""
        return DriverConnection(self.engine)

    async def dispose(self) -> None:
        await self.engine.dispose()


class DriverConnection:
    """A pooled connection as asyncpg's own, for a hot path that is one plain SQL statement: the same
    pool (and its fair hand-off) as the sessions, without an ORM session around it, which costs several
    times the statement itself (bench/registry_throughput.py). Use it as ``async with``; the connection
    rests in autocommit, so each statement commits on its own."""

    __slots__ = ("_engine", "_fairy")

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._fairy: PoolProxiedConnection | None = None

    async def __aenter__(self) -> asyncpg.Connection[Any]:
        self._fairy = await self._engine.raw_connection()
        connection: asyncpg.Connection[Any] = self._fairy.driver_connection
        return connection

    async def __aexit__(self, *_exc: object) -> None:
        fairy, self._fairy = self._fairy, None
        if fairy is not None:
            # In a greenlet: a connection left mid-statement (a cancelled request) is closed on return.
            await greenlet_spawn(fairy.close)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.database
    async with database.sessionmaker() as session:
        yield session


async def get_autocommit_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session whose every statement commits on its own: for reads (each sees the latest committed
    data) and for writes that are one statement, which PostgreSQL makes atomic by itself."""
    database: Database = request.app.state.database
    async with database.autocommit_sessionmaker() as session:
        yield session


async def get_database(request: Request) -> Database:
    # async: FastAPI would run a plain function in a worker thread, on every request.
    database: Database = request.app.state.database
    return database


SessionDep = Annotated[AsyncSession, Depends(get_session)]
AutocommitSessionDep = Annotated[AsyncSession, Depends(get_autocommit_session)]
DatabaseDep = Annotated[Database, Depends(get_database)]
