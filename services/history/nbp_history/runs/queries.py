"""The queries over the record: lists by keyset (any depth costs one index range), a total that never
counts a million rows, and one run with its error and results."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nbp_common.api import Page
from nbp_common.db import Database, utc_json_sql
from nbp_common.errors import NotFound
from nbp_common.events import LEGACY_FIELD_NAMES, ErrorDetails, ExecutionStatus
from sqlalchemy import Double, select
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from nbp_history.models import SCHEMA, Execution, ExecutionResult
from nbp_history.runs.cursor import Cursor
from nbp_history.runs.intake import ERROR_COLUMNS
from nbp_history.runs.schemas import ExecutionRecord, ExecutionRecordDetail, ResultOut

# Totals up to this are counted exactly (an index-only range of at most this many entries); above it,
# the total is the planner's estimate, and the answer says so (``X-Total-Count-Estimated: true``).
EXACT_TOTAL_LIMIT = 1000


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
    # The JSON text of the page's ``list[ExecutionRecord]``, as PostgreSQL rendered it.
    body: str
    total: Total
    next_cursor: Cursor | None


# A list page is rendered to JSON by PostgreSQL in one statement with its total, sent straight through
# asyncpg: hydrating a hundred ORM rows and validating and serializing a hundred records cost ~10 ms of
# Python per page, dozens of times the statement (profiled at a million runs, bench/history_scale.py).
# The record's JSON is made from ExecutionRecord's own fields, so the two cannot drift apart; timestamps
# are written as pydantic writes a UTC datetime, and a number that is not finite as null, as pydantic does.
def _record_json_sql(alias: str) -> str:
    columns = Execution.__table__.columns
    fields = {name: name for name in ExecutionRecord.model_fields}
    # The deprecated names (computed fields) repeat the fields they were renamed to.
    fields |= {name: LEGACY_FIELD_NAMES[name] for name in ExecutionRecord.model_computed_fields}
    values = []
    for field, column in fields.items():
        value = f"{alias}.{column}"
        if isinstance(columns[column].type, TIMESTAMP):
            value = utc_json_sql(value)
        elif isinstance(columns[column].type, Double):
            value = f"CASE WHEN abs({value}) < 'Infinity' THEN {value} END"
        values.append(f"'{field}', {value}")
    return f"json_build_object({', '.join(values)})::text"


_RUNS = f"{SCHEMA}.{Execution.__tablename__}"
_RECORD_JSON = _record_json_sql("p")
_NEWEST_FIRST = "queued_at DESC, id DESC"


class _Statement:
    """SQL conditions with their values as asyncpg's numbered parameters."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def bind(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _conditions(filters: ExecutionFilters, statement: _Statement) -> str:
    """SQL: the filters on the runs table (as ``e``)."""
    conditions = ["TRUE"]
    for username in (filters.owner, filters.username):
        if username is not None:
            conditions.append(f"e.username = {statement.bind(username)}")
    if filters.notebook_id is not None:
        conditions.append(f"e.notebook_id = {statement.bind(filters.notebook_id)}")
    if filters.status is not None:
        conditions.append(f"e.status = {statement.bind(ExecutionStatus(filters.status).value)}")
    if filters.started_after is not None:
        conditions.append(f"e.started_at >= {statement.bind(filters.started_after)}")
    if filters.started_before is not None:
        # A run is queued before it starts (a CHECK on the table): the same bound on queued_at turns a
        # page of old runs into a range of the (queued_at, id) indexes instead of a walk down to it.
        before = statement.bind(filters.started_before)
        conditions.append(f"e.started_at < {before} AND e.queued_at < {before}")
    return " AND ".join(conditions)


async def list_executions(
    database: Database, page: Page, filters: ExecutionFilters, cursor: Cursor | None
) -> ExecutionPage:
    """Newest first; after ``cursor`` when given (then ``page.offset`` counts from there)."""
    statement = _Statement()
    matching = _conditions(filters, statement)
    filter_values = list(statement.values)
    after = ""
    if cursor is not None:
        last = f"{statement.bind(cursor.queued_at)}, {statement.bind(cursor.id)}"
        after = f" AND (e.queued_at, e.id) < ({last})"
    limit, offset = statement.bind(page.limit + 1), statement.bind(page.offset)
    # The count first, in list order: the planner then takes the list's index range, which stops after
    # EXACT_TOTAL_LIMIT + 1 entries. An empty page still answers one row, with its count.
    sql = f"""
        SELECT p.queued_at, p.id, {_RECORD_JSON} AS record, counted.n
        FROM (
            SELECT count(*) AS n FROM (
                SELECT FROM {_RUNS} AS e WHERE {matching}
                ORDER BY {_NEWEST_FIRST} LIMIT {EXACT_TOTAL_LIMIT + 1}
            ) AS first_
        ) AS counted
        LEFT JOIN LATERAL (
            SELECT * FROM {_RUNS} AS e WHERE {matching}{after}
            ORDER BY {_NEWEST_FIRST} LIMIT {limit} OFFSET {offset}
        ) AS p ON TRUE
        ORDER BY p.queued_at DESC, p.id DESC
    """
    async with database.driver_connection() as connection:
        rows = await connection.fetch(sql, *statement.values)
        counted: int = rows[0]["n"]
        total = Total(counted, estimated=False)
        if counted > EXACT_TOTAL_LIMIT:
            # PostgreSQL's estimate from its statistics: planning, no execution.
            plan = await connection.fetchval(
                f"EXPLAIN (FORMAT JSON) SELECT FROM {_RUNS} AS e WHERE {matching}", *filter_values
            )
            estimate = int(_json(plan)[0]["Plan"]["Plan Rows"])
            total = Total(max(estimate, EXACT_TOTAL_LIMIT + 1), estimated=True)
    items = [row for row in rows[: page.limit] if row["id"] is not None]
    more = len(rows) > page.limit
    next_cursor = Cursor(items[-1]["queued_at"], items[-1]["id"]) if more else None
    body = "[" + ",".join(row["record"] for row in items) + "]"
    return ExecutionPage(body, total, next_cursor)


def _json(document: Any) -> Any:
    return json.loads(document) if isinstance(document, str) else document


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
