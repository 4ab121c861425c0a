"""The record's HTTP surface: the seed's execution paths and the executor's event intake."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from nbp_common.api import MAX_ID, IdPath, PageDep
from nbp_common.auth import Administrator, Reader, owner_scope
from nbp_common.db import AutocommitSessionDep, DatabaseDep, SessionDep
from nbp_common.errors import ErrorBody
from nbp_common.events import ExecutionEvent, ExecutionStatus

from nbp_history.runs import intake, queries
from nbp_history.runs.cursor import Cursor
from nbp_history.runs.schemas import EventOutcome, ExecutionRecord, ExecutionRecordDetail, ResultOut

_404: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No execution with that id."}
}
_PAGE_HEADERS = {
    "X-Total-Count": {"description": "The runs matching the filters (see X-Total-Count-Estimated)."},
    "X-Total-Count-Estimated": {
        "description": f"true when there are more than {queries.EXACT_TOTAL_LIMIT}: the total is then"
        " PostgreSQL's estimate; false when it is exact."
    },
    "X-Next-Cursor": {"description": "Give it as `cursor` for the next page; absent on the last page."},
    "Link": {"description": 'The next page\'s URL, `<...>; rel="next"`; absent on the last page.'},
}
_LIST_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"headers": _PAGE_HEADERS}}

executions = APIRouter(prefix="/db/executions", tags=["executions"])
internal = APIRouter(prefix="/internal", tags=["internal"])

Username = Annotated[str | None, Query(max_length=255)]
NotebookId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
CursorQuery = Annotated[
    str | None,
    Query(
        max_length=200,
        description="Start after the last run of the previous page (its `X-Next-Cursor`): a page at any"
        " depth costs what the first does, where a large `offset` does not.",
    ),
]


def _page(request: Request, page: queries.ExecutionPage) -> Response:
    """The page as a bare JSON array (as the seed answered), its total and next page in headers."""
    headers = {
        "X-Total-Count": str(page.total.value),
        "X-Total-Count-Estimated": "true" if page.total.estimated else "false",
    }
    if page.next_cursor is not None:
        token = page.next_cursor.encode()
        following = request.url.remove_query_params("offset").include_query_params(cursor=token)
        headers["X-Next-Cursor"] = token
        headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    # Rendered by PostgreSQL as list[ExecutionRecord] (queries.list_executions); response_model documents it.
    return Response(page.body, media_type="application/json", headers=headers)


@executions.get("", response_model=list[ExecutionRecord], responses=_LIST_RESPONSES)
async def list_executions(
    request: Request,
    database: DatabaseDep,
    page: PageDep,
    caller: Reader,
    username: Username = None,
    notebook_id: NotebookId = None,
    status: ExecutionStatus | None = None,
    started_after: datetime | None = None,
    started_before: datetime | None = None,
    cursor: CursorQuery = None,
) -> Response:
    """Runs, newest first (by `queued_at`, then `id`). Users see their own, admins all."""
    filters = queries.ExecutionFilters(
        owner_scope(caller), username, notebook_id, status, started_after, started_before
    )
    position = Cursor.decode(cursor) if cursor is not None else None
    return _page(request, await queries.list_executions(database, page, filters, position))


@executions.get("/notebook/{id}", response_model=list[ExecutionRecord], responses=_LIST_RESPONSES)
async def list_notebook_executions(
    id: IdPath,
    request: Request,
    database: DatabaseDep,
    page: PageDep,
    caller: Reader,
    cursor: CursorQuery = None,
) -> Response:
    """One notebook's runs, newest first (kept after the notebook is deleted)."""
    filters = queries.ExecutionFilters(owner=owner_scope(caller), notebook_id=id)
    position = Cursor.decode(cursor) if cursor is not None else None
    return _page(request, await queries.list_executions(database, page, filters, position))


@executions.get("/{id}", response_model=ExecutionRecordDetail, responses=_404)
async def get_execution(id: IdPath, session: AutocommitSessionDep, caller: Reader) -> Any:
    """A run with its error details and recorded results."""
    return await queries.get_execution(session, id, owner_scope(caller))


@executions.get("/{id}/results", response_model=list[ResultOut], responses=_404)
async def list_results(id: IdPath, session: AutocommitSessionDep, caller: Reader) -> Any:
    """The named values a run recorded."""
    return await queries.list_results(session, id, owner_scope(caller))


@internal.post("/events", response_model=EventOutcome)
async def record_event(event: ExecutionEvent, session: SessionDep, _caller: Administrator) -> EventOutcome:
    """A run's lifecycle event from the executor (its service account; or an admin). Idempotent by
    `event_id`; an event older than what is recorded (a late `running` after `completed`) is
    acknowledged and ignored."""
    outcome = await intake.record_event(session, event)
    return EventOutcome(event_id=str(event.event_id), execution_id=event.execution_id, outcome=outcome)
