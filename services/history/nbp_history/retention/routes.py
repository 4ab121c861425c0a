"""Retention's HTTP surface: the platform's policy, and each notebook's own."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from nbp_common.api import IdPath
from nbp_common.auth import Administrator, Reader
from nbp_common.db import AutocommitSessionDep

from nbp_history.retention import service
from nbp_history.retention.schemas import NotebookPolicy, PolicyIn, RetentionOut
from nbp_history.settings import HistorySettings

router = APIRouter(prefix="/db/executions/retention", tags=["retention"])


@router.get("", response_model=RetentionOut)
async def retention(request: Request, session: AutocommitSessionDep, _caller: Reader) -> Any:
    """How long ended runs are kept: the platform's policy and the notebooks with their own. The purge
    (`nbp-history purge-expired`, a CronJob in the chart) removes older ones, their results and output
    notebooks; the stats keep counting them."""
    settings: HistorySettings = request.app.state.history_settings
    return RetentionOut(
        default_days=settings.history_retention_days,
        notebooks=[NotebookPolicy.model_validate(p) for p in await service.policies(session)],
    )


@router.put("/notebooks/{id}", response_model=NotebookPolicy)
async def set_notebook_policy(
    id: IdPath, policy: PolicyIn, session: AutocommitSessionDep, _caller: Administrator
) -> Any:
    """A notebook's own retention, longer or shorter than the platform's."""
    return await service.set_policy(session, id, policy.retention_days)


@router.delete("/notebooks/{id}", status_code=204)
async def remove_notebook_policy(
    id: IdPath, session: AutocommitSessionDep, _caller: Administrator
) -> Response:
    """The notebook follows the platform's policy again."""
    await service.remove_policy(session, id)
    return Response(status_code=204)
