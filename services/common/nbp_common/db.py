"""The async engine (SQLAlchemy 2 over asyncpg) and the per-request session dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from nbp_common.settings import Settings

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


class Database:
    """The engine and the two kinds of session every service uses.

    Connections rest in autocommit: a read is one round trip after the pre-ping, which itself is one
    round trip (outside a transaction asyncpg's ping needs no BEGIN/ROLLBACK around it). Sessions that
    write switch their connection to READ COMMITTED, so their statements run in one transaction.
    """

    def __init__(self, settings: Settings) -> None:
        self.engine: AsyncEngine = create_async_engine(
            settings.sqlalchemy_url,
            pool_pre_ping=True,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            isolation_level="AUTOCOMMIT",
        )
        self.sessionmaker = async_sessionmaker(
            self.engine.execution_options(isolation_level="READ COMMITTED"), expire_on_commit=False
        )
        self.read_sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    async def dispose(self) -> None:
        await self.engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.database
    async with database.sessionmaker() as session:
        yield session


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for endpoints that only read (each statement sees the latest committed data)."""
    database: Database = request.app.state.database
    async with database.read_sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]
