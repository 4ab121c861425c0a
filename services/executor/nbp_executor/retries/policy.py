"""A retry policy and what it makes of a run's ending: the next attempt's job, or nothing.

Attempt ``n + 1`` of a run is queued when attempt ``n`` ended in one of the policy's endings and
``n <= max_retries``; it waits ``backoff_seconds * 2 ** (n - 1)`` (``not_before``) before a worker may
claim it. It is a new run (its own id, record and output), with ``retry_of`` = the first attempt's id
and ``attempt`` = ``n + 1``. A run cancelled is never retried.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Annotated, Any

from nbp_common.events import ExecutionStatus
from pydantic import BaseModel, ConfigDict, Field

from nbp_executor.intake import workspace
from nbp_executor.models import Job, queued_state

MAX_RETRIES = 10
LOST_PREFIXES = ("executor lost", "executor stopped")


class RetryOn(enum.StrEnum):
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    EXECUTOR_LOST = "executor_lost"


class RetryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_retries: Annotated[int, Field(ge=0, le=MAX_RETRIES, description="Attempts after the first.")] = 0
    backoff_seconds: Annotated[
        float, Field(ge=0, le=86_400, description="Wait before the first retry; doubled for each next one.")
    ] = 60.0
    retry_on: list[RetryOn] = Field(
        default_factory=lambda: list(RetryOn),
        min_length=1,
        max_length=3,
        description="Which endings are retried.",
    )


def columns(policy: RetryPolicy | None) -> dict[str, Any]:
    """A policy as the job (or schedule) columns that hold it."""
    policy = policy or RetryPolicy()
    return {
        "retry_max": policy.max_retries,
        "retry_backoff_seconds": policy.backoff_seconds,
        "retry_on": sorted({r.value for r in policy.retry_on}),
    }


def policy_of(row: Any) -> RetryPolicy:
    return RetryPolicy(
        max_retries=row.retry_max, backoff_seconds=row.retry_backoff_seconds, retry_on=list(row.retry_on)
    )


def ending(job: Job) -> RetryOn | None:
    if job.status == ExecutionStatus.TIMED_OUT:
        return RetryOn.TIMED_OUT
    if job.status == ExecutionStatus.FAILED:
        lost = (job.error_message or "").startswith(LOST_PREFIXES)
        return RetryOn.EXECUTOR_LOST if lost else RetryOn.FAILED
    return None


def next_attempt(job: Job, now: datetime) -> dict[str, Any] | None:
    """The values of the job that retries ``job`` (its ``id`` and default output still to fill), if any."""
    why = ending(job)
    if why is None or why.value not in job.retry_on or job.attempt > job.retry_max:
        return None
    delay = job.retry_backoff_seconds * 2 ** (job.attempt - 1)
    return {
        "attempt": job.attempt + 1,
        "max_attempts": job.max_attempts,
        "retry_of": job.retry_of or job.id,
        "retry_max": job.retry_max,
        "retry_backoff_seconds": job.retry_backoff_seconds,
        "retry_on": list(job.retry_on),
        "not_before": now + timedelta(seconds=delay),
        "username": job.username,
        "notebook_id": job.notebook_id,
        "notebook_name": job.notebook_name,
        "input_path": job.input_path,
        "output_path": job.output_path,
        "parameters": job.parameters,
        "kernel_name": job.kernel_name,
        "timeout_seconds": job.timeout_seconds,
        "cell_timeout_seconds": job.cell_timeout_seconds,
        "resources": job.resources,
        "tags": list(job.tags),
        "owner_groups": list(job.owner_groups),
        "input_sha256": job.input_sha256,
        "has_parameters_cell": job.has_parameters_cell,
        "cells_total": job.cells_total,
        **queued_state(now),
        "schedule_id": job.schedule_id,
        "fire_time": job.fire_time,
    }


def output_for(previous: Job, run_id: int) -> str:
    """A default output is named after its run: the retry gets its own; a chosen one is kept."""
    default = f"-{previous.id}.ipynb"
    if previous.output_path.startswith(f"{workspace.OUTPUTS_DIR}/") and previous.output_path.endswith(
        default
    ):
        return workspace.default_output(PurePosixPath(previous.input_path).stem, run_id)
    return previous.output_path
