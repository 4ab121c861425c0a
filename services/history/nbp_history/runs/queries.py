"""The queries over the record: lists by keyset (any depth costs one index range), a total that never
counts a million rows, and one run with its error and results."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nbp_common.api import Page
from nbp_common.errors import NotFound
from nbp_common.events import ErrorDetails
from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from nbp_history.models import Execution, ExecutionResult
from nbp_history.runs.cursor import Cursor
from nbp_history.runs.intake import ERROR_COLUMNS
from nbp_history.runs.schemas import ExecutionRecordDetail, ResultOut

# Totals up to this are counted exactly (an index-only range of at most this many entries); above it,
# the total is the planner's estimate, and the answer says so (``X-Total-Count-Estimated: true``).
EXACT_TOTAL_LIMIT = 1000
NEWEST_FIRST = (Execution.queued_at.desc(), Execution.id.desc())


@dataclass(frozen=True)
class ExecutionFilters:
    # Narrows everything to one user's runs (a non-admin caller's own); None for everyone's.
    owner: str | None = None
    username: str | None = None
    notebook_id: int | None = None
    status: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None


@dataclass(frozen=True)
class Total:
    value: int
    estimated: bool


@dataclass(frozen=True)
class ExecutionPage:
    items: Sequence[Execution]
    total: Total
    next_cursor: Cursor | None


def _filtered(query: Select[Any], filters: ExecutionFilters) -> Select[Any]:
    if filters.owner is not None:
        query = query.where(Execution.username == filters.owner)
    if filters.username is not None:
        query = query.where(Execution.username == filters.username)
    if filters.notebook_id is not None:
        query = query.where(Execution.notebook_id == filters.notebook_id)
    if filters.status is not None:
        query = query.where(Execution.status == filters.status)
    if filters.started_after is not None:
        query = query.where(Execution.started_at >= filters.started_after)
    if filters.started_before is not None:
        # A run is queued before it starts (a CHECK on the table): the same bound on queued_at turns a
        # page of old runs into a range of the (queued_at, id) indexes instead of a walk down to it.
        query = query.where(
            Execution.started_at < filters.started_before, Execution.queued_at < filters.started_before
        )
    return query


async def list_executions(
    session: AsyncSession, page: Page, filters: ExecutionFilters, cursor: Cursor | None
) -> ExecutionPage:
    """Newest first; after ``cursor`` when given (then ``page.offset`` counts from there)."""
    query = _filtered(select(Execution), filters)
    if cursor is not None:
        query = query.where(tuple_(Execution.queued_at, Execution.id) < (cursor.queued_at, cursor.id))
    rows = (
        await session.scalars(query.order_by(*NEWEST_FIRST).limit(page.limit + 1).offset(page.offset))
    ).all()
    items = rows[: page.limit]
    more = len(rows) > page.limit
    next_cursor = Cursor(items[-1].queued_at, items[-1].id) if more else None
    return ExecutionPage(items, await count(session, filters), next_cursor)


async def count(session: AsyncSession, filters: ExecutionFilters) -> Total:
    matching = _filtered(select(Execution.id), filters)
    # In list order: the planner then takes the list's index range, which stops after the limit.
    first = matching.order_by(*NEWEST_FIRST).limit(EXACT_TOTAL_LIMIT + 1)
    counted = await session.scalar(select(func.count()).select_from(first.subquery()))
    if counted is not None and counted <= EXACT_TOTAL_LIMIT:
        return Total(counted, estimated=False)
    return Total(max(await _planner_estimate(session, matching), EXACT_TOTAL_LIMIT + 1), estimated=True)


async def _planner_estimate(session: AsyncSession, query: Select[Any]) -> int:
    """The rows PostgreSQL expects ``query`` to return, from its statistics: planning, no execution."""
    connection = await session.connection()
    compiled = query.compile(dialect=connection.dialect)
    values = compiled.construct_params()
    parameters = tuple(values[name] for name in compiled.positiontup or ())
    plan = (await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", parameters)).scalar_one()
    document = json.loads(plan) if isinstance(plan, str) else plan
    return int(document[0]["Plan"]["Plan Rows"])


async def get_execution(session: AsyncSession, execution_id: int, owner: str | None) -> ExecutionRecordDetail:
    """A run with its error and results; another user's run (``owner`` set) as if it did not exist."""
    record = await session.scalar(
        select(Execution).where(Execution.id == execution_id).options(selectinload(Execution.results))
    )
    if record is None or (owner is not None and record.username != owner):
        raise NotFound(f"execution {execution_id} does not exist")
    error_values = {key: getattr(record, column) for key, column in ERROR_COLUMNS.items()}
    return ExecutionRecordDetail.model_validate(
        {
            **{c.key: getattr(record, c.key) for c in Execution.__table__.columns},
            "error": ErrorDetails(**error_values)
            if any(v is not None for v in error_values.values())
            else None,
            "results": [ResultOut.model_validate(r) for r in record.results],
        }
    )


async def list_results(
    session: AsyncSession, execution_id: int, owner: str | None
) -> Sequence[ExecutionResult]:
    record = await session.get(Execution, execution_id)
    if record is None or (owner is not None and record.username != owner):
        raise NotFound(f"execution {execution_id} does not exist")
    rows = await session.scalars(
        select(ExecutionResult)
        .where(ExecutionResult.execution_id == execution_id)
        .order_by(ExecutionResult.id)
    )
    return rows.all()
