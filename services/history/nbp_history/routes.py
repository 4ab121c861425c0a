"""The history's HTTP surface: the seed's execution paths, the stats, and the executor's event intake."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from nbp_common.api import MAX_ID, IdPath, PageDep, with_total
from nbp_common.auth import Administrator, Reader, owner_scope
from nbp_common.db import AutocommitSessionDep, SessionDep
from nbp_common.errors import ErrorBody
from nbp_common.events import ExecutionEvent, ExecutionStatus

from nbp_history import service
from nbp_history.schemas import (
    EventOutcome,
    ExecutionRecord,
    ExecutionRecordDetail,
    ExecutionStats,
    ResultOut,
)

_404: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No execution with that id."}
}

executions = APIRouter(prefix="/db/executions", tags=["executions"])
internal = APIRouter(prefix="/internal", tags=["internal"])

Username = Annotated[str | None, Query(max_length=255)]
NotebookId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@executions.get("", response_model=list[ExecutionRecord])
async def list_executions(
    session: AutocommitSessionDep,
    page: PageDep,
    response: Response,
    caller: Reader,
    username: Username = None,
    notebook_id: NotebookId = None,
    status: ExecutionStatus | None = None,
    started_after: datetime | None = None,
    started_before: datetime | None = None,
) -> Any:
    """Runs, newest first; the total is in `X-Total-Count`. Users see their own, admins all."""
    filters = service.ExecutionFilters(
        owner_scope(caller), username, notebook_id, status, started_after, started_before
    )
    total, items = await service.list_executions(session, page, filters)
    return with_total(response, total, items)


@executions.get("/stats", response_model=ExecutionStats)
async def execution_stats(
    session: AutocommitSessionDep,
    caller: Reader,
    since: datetime | None = None,
    until: datetime | None = None,
    username: Username = None,
    notebook_id: NotebookId = None,
) -> Any:
    """Counts by status, success rate, and p50/p95 duration of completed runs per notebook, over a window
    (default: the 7 days before `until`, which defaults to now)."""
    return await service.stats(session, since, until, username, notebook_id, owner_scope(caller))


@executions.get("/notebook/{id}", response_model=list[ExecutionRecord])
async def list_notebook_executions(
    id: IdPath, session: AutocommitSessionDep, page: PageDep, response: Response, caller: Reader
) -> Any:
    """One notebook's runs, newest first (kept after the notebook is deleted)."""
    filters = service.ExecutionFilters(owner=owner_scope(caller), notebook_id=id)
    total, items = await service.list_executions(session, page, filters)
    return with_total(response, total, items)


@executions.get("/{id}", response_model=ExecutionRecordDetail, responses=_404)
async def get_execution(id: IdPath, session: AutocommitSessionDep, caller: Reader) -> Any:
    """A run with its error details and recorded results."""
    return await service.get_execution(session, id, owner_scope(caller))


@executions.get("/{id}/results", response_model=list[ResultOut], responses=_404)
async def list_results(id: IdPath, session: AutocommitSessionDep, caller: Reader) -> Any:
    """The named values a run recorded."""
    return await service.list_results(session, id, owner_scope(caller))


@internal.post("/events", response_model=EventOutcome)
async def record_event(event: ExecutionEvent, session: SessionDep, _caller: Administrator) -> EventOutcome:
    """A run's lifecycle event from the executor (its service account; or an admin). Idempotent by
    `event_id`; an event older than what is recorded (a late `running` after `completed`) is
    acknowledged and ignored."""
    outcome = await service.record_event(session, event)
    return EventOutcome(event_id=str(event.event_id), execution_id=event.execution_id, outcome=outcome)
