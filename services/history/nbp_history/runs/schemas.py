"""The record's API models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from nbp_common.events import ErrorDetails, RunRecordOut
from pydantic import BaseModel, ConfigDict, Field


class ResultOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    value_numeric: float | None
    value_json: Any | None
    recorded_at: datetime


class ExecutionRecord(RunRecordOut):
    """A run as the history keeps it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    updated_at: datetime


class ExecutionRecordDetail(ExecutionRecord):
    error: ErrorDetails | None
    results: list[ResultOut]


class EventOutcome(BaseModel):
    event_id: str
    execution_id: int
    outcome: Literal["applied", "stale", "duplicate"] = Field(
        description="applied: the record changed; stale: an older state, ignored; duplicate: seen before."
    )
