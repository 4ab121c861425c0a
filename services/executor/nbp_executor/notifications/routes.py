"""The ``/notifications`` resource."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status
from fastapi.responses import JSONResponse
from nbp_common.api import IdPath, PageDep, with_total
from nbp_common.auth import Reader, Writer
from nbp_common.db import SessionDep
from nbp_common.errors import ErrorBody

from nbp_executor.notifications import service
from nbp_executor.notifications.schemas import (
    DeliveryOut,
    NotificationCreate,
    NotificationCreated,
    NotificationOut,
)
from nbp_executor.runtime import ExecutorRuntime, get_runtime

Runtime = Annotated[ExecutorRuntime, Depends(get_runtime)]
_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "No such notification."}}

notifications = APIRouter(prefix="/notifications", tags=["notifications"])


@notifications.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=NotificationCreated,
    responses={403: {"model": ErrorBody, "description": "Another user's schedule or notebook."}},
)
async def create_notification(
    body: NotificationCreate, rt: Runtime, session: SessionDep, caller: Writer
) -> Any:
    """Notify a webhook or an e-mail address when a schedule's (or a notebook's) run fails, succeeds or
    recovers. A webhook's signing secret is in this answer only."""
    rule = await service.create(rt, session, body, caller)
    out = NotificationCreated.model_validate(
        {**service.rule_out(rule).model_dump(), "signing_secret": rule.signing_secret}
    )
    return JSONResponse(
        out.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        headers={"Location": f"/notifications/{rule.id}"},
    )


@notifications.get("", response_model=list[NotificationOut])
async def list_notifications(response: Response, session: SessionDep, page: PageDep, caller: Reader) -> Any:
    """Your notifications (an admin's: everyone's)."""
    total, rows = await service.listing(session, caller, page.limit, page.offset)
    return with_total(response, total, [service.rule_out(r) for r in rows])


@notifications.get("/{id}", response_model=NotificationOut, responses=_404)
async def get_notification(id: IdPath, session: SessionDep, caller: Reader) -> Any:
    return service.rule_out(await service.get(session, id, caller))


@notifications.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT, responses=_404)
async def delete_notification(id: IdPath, session: SessionDep, caller: Writer) -> Response:
    await service.delete(session, id, caller)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@notifications.get("/{id}/deliveries", response_model=list[DeliveryOut], responses=_404)
async def list_deliveries(
    id: IdPath, response: Response, session: SessionDep, page: PageDep, caller: Reader
) -> Any:
    """Each message of this notification, newest first: delivered, or its attempts and last error."""
    total, rows = await service.deliveries(session, id, caller, page.limit, page.offset)
    return with_total(response, total, [DeliveryOut.model_validate(d, from_attributes=True) for d in rows])
