"""The stats' API models."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from nbp_history.rollups.histogram import RELATIVE_ERROR

_PERCENTILE = (
    f"Nearest-rank percentile of the completed runs' execution_time_seconds, read from the rollups'"
    f" histograms: within {RELATIVE_ERROR:.1%} of the exact value."
)


class NotebookStats(BaseModel):
    notebook_id: int | None
    notebook_name: str | None
    total: int
    completed: int
    failed: int
    success_rate: float | None
    p50_duration_seconds: float | None = Field(description=_PERCENTILE)
    p95_duration_seconds: float | None = Field(description=_PERCENTILE)


class ExecutionStats(BaseModel):
    since: datetime = Field(description="The window counted: the one asked for, widened to whole hours.")
    until: datetime
    total: int
    by_status: dict[str, int]
    success_rate: float | None = Field(
        description="completed / finished runs in the window; null if none finished"
    )
    notebooks: list[NotebookStats]
