"""The schedules API's models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from nbp_common.api import NoNul
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from nbp_executor.retries.policy import RetryPolicy
from nbp_executor.schedules.models import CatchUp, FireOutcome, Overlap
from nbp_executor.schemas import KernelName, NotebookId, Parameters, RelPath, Timeout, Username

Cron = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        description="Five fields: minute hour day-of-month month day-of-week (local time of `timezone`).",
        examples=["30 2 * * *"],
    ),
    NoNul,
]
TimezoneName = Annotated[
    str, Field(min_length=1, max_length=64, description="An IANA name.", examples=["Europe/Berlin"]), NoNul
]
Description = Annotated[str, Field(max_length=10_000), NoNul]
MaxConcurrent = Annotated[
    int,
    Field(
        ge=1,
        le=100,
        description="Runs of this schedule queued or running at once; a fire beyond it is skipped.",
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ScheduleCreate(_Strict):
    notebook_id: NotebookId | None = None
    notebook_path: RelPath | None = Field(
        default=None, validation_alias=AliasChoices("notebook_path", "path")
    )
    username: Username | None = None
    cron: Cron
    timezone: TimezoneName = "UTC"
    parameters: Parameters = Field(default_factory=dict)
    enabled: bool = True
    description: Description | None = None
    catch_up: CatchUp = CatchUp.NONE
    max_concurrent: MaxConcurrent = 1
    kernel_name: KernelName | None = None
    timeout_seconds: Timeout | None = None
    retry: RetryPolicy | None = Field(default=None, description="Retries of each run (default: none).")

    @model_validator(mode="after")
    def _one_notebook(self) -> ScheduleCreate:
        if (self.notebook_id is None) == (self.notebook_path is None):
            raise ValueError("give exactly one of notebook_id or notebook_path")
        if self.notebook_path is not None and self.username is None:
            raise ValueError("a notebook_path needs the username whose folder it is in")
        return self


class ScheduleUpdate(_Strict):
    """Only the fields given change; `enabled: false` pauses, `enabled: true` resumes."""

    cron: Cron | None = None
    timezone: TimezoneName | None = None
    parameters: Parameters | None = None
    enabled: bool | None = None
    description: Description | None = None
    catch_up: CatchUp | None = None
    max_concurrent: MaxConcurrent | None = None
    timeout_seconds: Timeout | None = None
    retry: RetryPolicy | None = None


class ScheduleOut(BaseModel):
    id: int
    username: str
    notebook_id: int | None
    notebook_name: str | None
    notebook_path: str
    cron: str
    timezone: str
    parameters: dict[str, Any]
    kernel_name: str
    timeout_seconds: int | None
    enabled: bool
    description: str | None
    catch_up: CatchUp
    max_concurrent: int
    overlap: Overlap = Field(
        description="What a fire does while `max_concurrent` runs are still queued or running: skip."
    )
    retry: RetryPolicy
    owner_groups: list[str] = Field(
        description="The owner's realm groups its runs record, from the owner's token when they created or "
        "last changed the schedule (none when an admin made it for them)."
    )
    next_fire_at: datetime | None = Field(description="The next fire time (UTC); null while paused.")
    created_at: datetime
    updated_at: datetime


class ScheduleDetail(ScheduleOut):
    next_fire_times: list[datetime] = Field(description="The next five fire times (UTC); empty while paused.")


class FireOut(BaseModel):
    fire_time: datetime = Field(description="The nominal fire time (UTC).")
    outcome: FireOutcome
    job_id: int | None
    reason: str | None
    fired_at: datetime = Field(description="When an executor claimed it.")
    latency_seconds: float = Field(description="fired_at - fire_time.")
