"""The stats' HTTP surface."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from nbp_common.auth import Reader, owner_scope
from nbp_common.db import DatabaseDep

from nbp_history.rollups.schemas import ExecutionStats
from nbp_history.rollups.stats import stats
from nbp_history.runs.routes import NotebookId, Username

router = APIRouter(prefix="/db/executions", tags=["executions"])


@router.get("/stats", response_model=ExecutionStats)
async def execution_stats(
    database: DatabaseDep,
    caller: Reader,
    since: datetime | None = None,
    until: datetime | None = None,
    username: Username = None,
    notebook_id: NotebookId = None,
) -> Response:
    """Counts by status, success rate, and p50/p95 duration of completed runs per notebook, over a window
    (default: the 7 days before `until`, which defaults to now), widened to whole hours. Read from the
    rollups (whole weeks, days, six hours and hours): a month of a million runs is about ten rows per
    notebook, user and status."""
    found = await stats(database, since, until, username, notebook_id, owner_scope(caller))
    # Serialized once, here: response_model would validate the stats again first (it documents them).
    return Response(found.model_dump_json(), media_type="application/json")
