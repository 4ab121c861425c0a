"""The run lifecycle contract between the executor (which sends) and the history (which records).

Every event carries the whole record as the executor knows it at that moment, so the history can build
the record from any one of them: a lost, repeated or late event never leaves it incomplete or wrong.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

ExecutionStatus = Literal["queued", "running", "completed", "failed", "cancelled", "timed_out"]
STATUSES: tuple[str, ...] = get_args(ExecutionStatus)
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled", "timed_out"})
# The CHECK constraint of every table with a run's status in it.
STATUS_CHECK = "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")"


def lifecycle_rank(status: str) -> int:
    """Order of states within one attempt: a lower rank never replaces a higher one."""
    return 2 if status in TERMINAL else (1 if status == "running" else 0)


class ErrorDetails(BaseModel):
    """Where and how a run failed; for a cell error the cell's index and an excerpt of its source."""

    model_config = ConfigDict(extra="forbid")

    cell_index: int | None = Field(default=None, ge=0, le=2**31 - 1)
    cell_source: str | None = Field(default=None, max_length=100_000)
    ename: str | None = Field(default=None, max_length=255)
    evalue: str | None = Field(default=None, max_length=100_000)
    traceback: str | None = Field(default=None, max_length=1_000_000)


class RecordedResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    value_numeric: float | None = None
    value_json: Any | None = None


class ExecutionEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: uuid.UUID
    execution_id: int = Field(ge=1, le=2**63 - 1)
    status: ExecutionStatus
    attempt: int = Field(default=1, ge=1, le=1000)
    occurred_at: datetime

    notebook_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    notebook_name: str | None = Field(default=None, max_length=255)
    username: str = Field(min_length=1, max_length=255)
    input_path: str = Field(min_length=1, max_length=2048)
    output_path: str | None = Field(default=None, max_length=2048)
    parameters: dict[str, Any] = Field(default_factory=dict)
    kernel_name: str | None = Field(default=None, max_length=255)
    worker: str | None = Field(default=None, max_length=255)
    input_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    has_parameters_cell: bool | None = None
    tags: list[str] = Field(default_factory=list, max_length=50)
    queued_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: float | None = Field(default=None, ge=0)
    error_message: str | None = Field(default=None, max_length=100_000)
    error: ErrorDetails | None = None
    results: list[RecordedResult] = Field(default_factory=list, max_length=1000)
