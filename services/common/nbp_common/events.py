"""A run's record, as the executor reports it and the history keeps it, and the lifecycle events that
carry it from the one to the other.

Every event carries the whole record as the executor knows it at that moment, so the history can build
the record from any one of them: a lost, repeated or late event never leaves it incomplete or wrong.
Field names are the prototype's (``parameters_used``, ``execution_time_seconds``: its architecture
document is the contract); the names we used before them are answered as deprecated aliases and, in
events, still accepted.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator


class ExecutionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


STATUSES: tuple[str, ...] = tuple(status.value for status in ExecutionStatus)
TERMINAL: frozenset[ExecutionStatus] = frozenset(
    {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED, ExecutionStatus.TIMED_OUT}
)
# The CHECK constraint of every table with a run's status in it.
STATUS_CHECK = "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")"

# Bounds on the record's numbers: PostgreSQL's float8 arithmetic raises on overflow (it never yields
# infinity), so a number is bounded where the history adds it up. A run's duration: about 31.7 years,
# far beyond the longest timeout a run may have, and small enough that no count of runs can overflow the
# rollups' sums nor the duration histogram's bucket arithmetic (ln of the duration over 1 ms).
MAX_EXECUTION_TIME_SECONDS = 10**9
# A recorded number's magnitude: a googol keeps every realistic metric, and leaves room for any count of
# them in a daily result rollup's sum and in PostgreSQL's avg/stddev over the raw numbers (what a
# Superset chart asks: they square the spread times the count; 1e200 and -1e200 already overflow). A
# number beyond it is recorded as ``value_json``, exactly (``recorded_result``).
MAX_RESULT_MAGNITUDE = 1e100

# Our earlier field names -> the prototype's.
LEGACY_FIELD_NAMES = {"parameters": "parameters_used", "duration_seconds": "execution_time_seconds"}


def lifecycle_rank(status: str) -> int:
    """Order of states within one attempt: a lower rank never replaces a higher one."""
    return 2 if status in TERMINAL else (1 if status == ExecutionStatus.RUNNING else 0)


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
    value_numeric: float | None = Field(
        default=None,
        ge=-MAX_RESULT_MAGNITUDE,
        le=MAX_RESULT_MAGNITUDE,
        allow_inf_nan=False,
        description=f"A number recorded, finite and of magnitude at most {MAX_RESULT_MAGNITUDE:g} (so"
        " that the history's sums and averages of them cannot overflow); any other value is in value_json.",
    )
    value_json: Any | None = None


def recorded_result(name: str, value: Any) -> RecordedResult:
    """What ``nbp.record(name, value)`` is recorded as: a number within the bounds (a bool is no number)
    in ``value_numeric``, any other value, a larger number included, exactly in ``value_json``."""
    numeric = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        # compared exactly: an int too large for a float (10**400 is valid JSON) is just larger
        and -MAX_RESULT_MAGNITUDE <= value <= MAX_RESULT_MAGNITUDE
    )
    if numeric:
        return RecordedResult(name=name, value_numeric=float(value))
    return RecordedResult(name=name, value_json=value)


class RunRecord(BaseModel):
    """The fields of a run that both services describe: written once, here."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    status: ExecutionStatus
    attempt: int = Field(default=1, ge=1, le=1000)
    notebook_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    notebook_name: str | None = Field(default=None, max_length=255)
    username: str = Field(min_length=1, max_length=255)
    input_path: str = Field(min_length=1, max_length=2048)
    output_path: str | None = Field(default=None, max_length=2048)
    parameters_used: dict[str, Any] = Field(default_factory=dict, description="The values the run got.")
    kernel_name: str | None = Field(default=None, max_length=255)
    worker: str | None = Field(default=None, max_length=255)
    input_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    has_parameters_cell: bool | None = None
    tags: list[str] = Field(default_factory=list, max_length=50)
    queued_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    execution_time_seconds: float | None = Field(
        default=None, ge=0, description="From start to end of the run's last attempt."
    )
    error_message: str | None = Field(default=None, max_length=100_000)
    owner_groups: list[str] = Field(
        default_factory=list, max_length=100, description="The owner's realm groups when it was submitted."
    )
    schedule_id: int | None = Field(
        default=None, ge=1, le=2**63 - 1, description="The schedule that started this run, if one did."
    )
    fire_time: datetime | None = Field(
        default=None, description="The schedule's nominal fire time (null: not by a schedule, or run now)."
    )
    retry_of: int | None = Field(
        default=None, ge=1, le=2**63 - 1, description="On a retry: the id of the run's first attempt."
    )


class RunRecordOut(RunRecord):
    """A run record in an API answer: with our earlier names as deprecated aliases, so that the clients
    written against them keep working."""

    # mypy cannot see through a decorated property; pydantic's documented idiom.
    @computed_field(  # type: ignore[prop-decorator]
        json_schema_extra={"deprecated": True}, description="Deprecated: parameters_used."
    )
    @property
    def parameters(self) -> dict[str, Any]:
        return self.parameters_used

    @computed_field(  # type: ignore[prop-decorator]
        json_schema_extra={"deprecated": True}, description="Deprecated: execution_time_seconds."
    )
    @property
    def duration_seconds(self) -> float | None:
        return self.execution_time_seconds


class ExecutionEvent(RunRecord):
    """One state of a run, from the executor to the history."""

    model_config = ConfigDict(extra="forbid")

    event_id: uuid.UUID
    execution_id: int = Field(ge=1, le=2**63 - 1)
    # Bounded where a record comes in; an answer says what is stored, a row restored from before included.
    execution_time_seconds: float | None = Field(
        default=None,
        ge=0,
        le=MAX_EXECUTION_TIME_SECONDS,
        allow_inf_nan=False,
        description="From start to end of the run's last attempt: finite, at most"
        f" {MAX_EXECUTION_TIME_SECONDS:,} s (about 31.7 years, far beyond any run's timeout), so that"
        " the history's rollups of durations cannot overflow.",
    )
    occurred_at: datetime
    error: ErrorDetails | None = None
    results: list[RecordedResult] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="before")
    @classmethod
    def _accept_legacy_names(cls, data: Any) -> Any:
        # Events queued by an executor of the previous release (its outbox) still carry the old names.
        if isinstance(data, dict) and any(old in data for old in LEGACY_FIELD_NAMES):
            data = dict(data)
            for old, new in LEGACY_FIELD_NAMES.items():
                if old in data and new not in data:
                    data[new] = data.pop(old)
        return data
