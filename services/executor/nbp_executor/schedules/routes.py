"""The ``/schedules`` resource."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import JSONResponse
from nbp_common.api import IdPath, PageDep, with_total
from nbp_common.auth import Reader, Writer
from nbp_common.db import SessionDep
from nbp_common.errors import ErrorBody

from nbp_executor.api import service as runs_service
from nbp_executor.runtime import ExecutorRuntime, get_runtime
from nbp_executor.schedules import firing, service
from nbp_executor.schedules.schemas import (
    FireOut,
    ScheduleCreate,
    ScheduleDetail,
    ScheduleOut,
    ScheduleUpdate,
)
from nbp_executor.schemas import ExecutionState

Runtime = Annotated[ExecutorRuntime, Depends(get_runtime)]
_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "No such schedule."}}
_CHECKS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "Another user's name or notebook."},
    404: {"model": ErrorBody, "description": "No such notebook (file, or registered id)."},
    413: {"model": ErrorBody, "description": "Parameters over 64 KB."},
    503: {"model": ErrorBody, "description": "The registry is not reachable."},
}

schedules = APIRouter(prefix="/schedules", tags=["schedules"])


@schedules.post("", status_code=status.HTTP_201_CREATED, response_model=ScheduleDetail, responses=_CHECKS)
async def create_schedule(body: ScheduleCreate, rt: Runtime, session: SessionDep, caller: Writer) -> Any:
    """A notebook on a calendar: five-field cron in an IANA timezone (see the README for the
    daylight-saving rule). Everything is checked before anything is stored."""
    schedule = await service.create(rt, session, body, caller)
    return JSONResponse(
        service.schedule_detail(schedule, firing.utcnow()).model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        headers={"Location": f"/schedules/{schedule.id}"},
    )


@schedules.get("", response_model=list[ScheduleOut])
async def list_schedules(
    response: Response,
    session: SessionDep,
    page: PageDep,
    caller: Reader,
    username: Annotated[str | None, Query(max_length=255)] = None,
) -> Any:
    """Your schedules (an admin's: everyone's, or `username`'s), oldest first."""
    total, rows = await service.listing(session, caller, username, page.limit, page.offset)
    return with_total(response, total, [service.schedule_out(s) for s in rows])


@schedules.get("/{id}", response_model=ScheduleDetail, responses=_404)
async def get_schedule(id: IdPath, session: SessionDep, caller: Reader) -> Any:
    """A schedule with its next five fire times."""
    return service.schedule_detail(await service.get(session, id, caller), firing.utcnow())


@schedules.patch("/{id}", response_model=ScheduleDetail, responses={**_CHECKS, **_404})
async def update_schedule(
    id: IdPath, body: ScheduleUpdate, rt: Runtime, session: SessionDep, caller: Writer
) -> Any:
    """Pause (`enabled: false`), resume (`enabled: true`; times passed while paused do not fire) or change."""
    schedule = await service.update(rt, session, id, body, caller)
    return service.schedule_detail(schedule, firing.utcnow())


@schedules.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT, responses=_404)
async def delete_schedule(id: IdPath, session: SessionDep, caller: Writer) -> Response:
    """Delete the schedule (its runs stay, in the history too)."""
    await service.delete(session, id, caller)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@schedules.post(
    "/{id}/run-now", status_code=status.HTTP_202_ACCEPTED, response_model=ExecutionState, responses=_404
)
async def run_schedule_now(id: IdPath, rt: Runtime, session: SessionDep, caller: Writer) -> Any:
    """Queue a run of the schedule's notebook now (its `fire_time` is null)."""
    job = await service.run_now(rt, session, id, caller)
    return JSONResponse(
        runs_service.execution_out(job).model_dump(mode="json"),
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": f"/executions/{job.id}"},
    )


@schedules.get("/{id}/runs", response_model=list[ExecutionState], responses=_404)
async def list_schedule_runs(
    id: IdPath, response: Response, session: SessionDep, page: PageDep, caller: Reader
) -> Any:
    """The schedule's runs, newest first, each with its nominal `fire_time`."""
    total, rows = await service.runs(session, id, caller, page.limit, page.offset)
    return with_total(response, total, [runs_service.execution_out(j) for j in rows])


@schedules.get("/{id}/fires", response_model=list[FireOut], responses=_404)
async def list_schedule_fires(
    id: IdPath, response: Response, session: SessionDep, page: PageDep, caller: Reader
) -> Any:
    """Each fire time claimed, newest first: queued (with its run) or skipped (with the reason)."""
    total, rows = await service.fires(session, id, caller, page.limit, page.offset)
    return with_total(
        response,
        total,
        [
            FireOut(
                fire_time=f.fire_time,
                outcome=f.outcome,
                job_id=f.job_id,
                reason=f.reason,
                fired_at=f.fired_at,
                latency_seconds=(f.fired_at - f.fire_time).total_seconds(),
            )
            for f in rows
        ],
    )
