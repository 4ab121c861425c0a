"""The executor's API models: the seed's request shapes (with its short names) and the run record."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from nbp_common.api import NoNul, json_storable
from nbp_common.events import ErrorDetails, RecordedResult, RunRecordOut
from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, model_validator

from nbp_executor.retries.policy import RetryPolicy

MAX_TIMEOUT = 7 * 24 * 3600

Username = Annotated[
    str,
    Field(min_length=1, max_length=255, pattern=r"^\w[\w.@-]*$", examples=["alice"]),
    NoNul,
]
RelPath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1024,
        description="Relative to the user's workspace folder, or absolute under the user's home "
        "(/home/<username>/...).",
    ),
    NoNul,
]
OutputRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2048,
        description="Relative to the user's workspace folder, or a URL Papermill writes to (s3://...).",
    ),
    NoNul,
]
Parameters = Annotated[dict[str, Any], AfterValidator(json_storable)]
Tag = Annotated[str, Field(min_length=1, max_length=64), NoNul]
KernelName = Annotated[str, Field(min_length=1, max_length=255, examples=["python3"]), NoNul]
NotebookId = Annotated[int, Field(ge=1, le=2**63 - 1)]
Timeout = Annotated[int, Field(ge=1, le=MAX_TIMEOUT, description="Seconds.")]
Quantity = Annotated[str, Field(min_length=1, max_length=32), NoNul]


class RunResources(BaseModel):
    """What a run asks for (its pod's requests = limits = the value), each at most the admin's maximum."""

    model_config = ConfigDict(extra="forbid")

    cpu: Quantity | None = Field(default=None, examples=["2"])
    memory: Quantity | None = Field(default=None, examples=["8Gi"])


@dataclass
class RunRequest:
    """What every submit endpoint reduces to."""

    username: str | None
    notebook_id: int | None = None
    notebook_path: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    output_path: str | None = None
    kernel_name: str | None = None
    timeout_seconds: int | None = None
    cell_timeout_seconds: int | None = None
    tags: list[str] = field(default_factory=list)
    path_field: str = "notebook_path"
    retry: RetryPolicy | None = None
    resources: RunResources | None = None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ExecuteRequest(_Strict):
    """The seed's ``/execute``: a notebook by path (or id), its parameters. Short names accepted. Without
    ``username``, the run is the caller's, or that of the user whose home an absolute path names."""

    username: Username | None = Field(default=None, validation_alias=AliasChoices("username", "user"))
    notebook_path: RelPath | None = Field(
        default=None, validation_alias=AliasChoices("notebook_path", "path", "input_path")
    )
    notebook_id: NotebookId | None = None
    parameters: Parameters = Field(
        default_factory=dict, validation_alias=AliasChoices("parameters", "params")
    )

    @model_validator(mode="after")
    def _one_notebook(self) -> ExecuteRequest:
        _check_notebook(self.notebook_id, self.notebook_path)
        return self

    def run_request(self) -> RunRequest:
        return RunRequest(self.username, self.notebook_id, self.notebook_path, self.parameters)


class RunNotebookRequest(_Strict):
    """The seed's ``/run-notebook``: input and output paths inside the caller's folder."""

    username: Username | None = Field(default=None, validation_alias=AliasChoices("username", "user"))
    input_path: RelPath
    output_path: OutputRef | None = None
    parameters: Parameters = Field(
        default_factory=dict, validation_alias=AliasChoices("parameters", "params")
    )

    def run_request(self) -> RunRequest:
        return RunRequest(
            self.username,
            notebook_path=self.input_path,
            parameters=self.parameters,
            output_path=self.output_path,
            path_field="input_path",
        )


class ExecuteNotebookRequest(_Strict):
    """The full form (the seed's ``/execute-notebook``, and ``POST /executions``)."""

    notebook_id: NotebookId | None = None
    notebook_path: RelPath | None = Field(
        default=None, validation_alias=AliasChoices("notebook_path", "path", "input_path")
    )
    username: Username | None = Field(default=None, validation_alias=AliasChoices("username", "user"))
    parameters: Parameters = Field(
        default_factory=dict, validation_alias=AliasChoices("parameters", "params")
    )
    output_path: OutputRef | None = None
    kernel_name: KernelName | None = None
    timeout_seconds: Timeout | None = None
    cell_timeout_seconds: Timeout | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    retry: RetryPolicy | None = Field(default=None, description="Retries of this run (default: none).")
    resources: RunResources | None = Field(
        default=None,
        description="CPU and memory of the run's pod (`kubernetes` runner only; requests = limits = the "
        "value, at most the administrator's maximum; default: the configured requests and limits).",
    )

    @model_validator(mode="after")
    def _one_notebook(self) -> ExecuteNotebookRequest:
        _check_notebook(self.notebook_id, self.notebook_path)
        return self

    def run_request(self) -> RunRequest:
        return RunRequest(
            self.username,
            self.notebook_id,
            self.notebook_path,
            self.parameters,
            self.output_path,
            self.kernel_name,
            self.timeout_seconds,
            self.cell_timeout_seconds,
            list(self.tags),
            retry=self.retry,
            resources=self.resources,
        )


def _check_notebook(notebook_id: int | None, path: str | None) -> None:
    if (notebook_id is None) == (path is None):
        raise ValueError("give exactly one of notebook_id or notebook_path")


class ProgressOut(BaseModel):
    cells_done: int
    cells_total: int | None
    current_cell: int | None = Field(description="Index (in the input notebook) of the cell running now.")


class ExecutionState(RunRecordOut):
    """A run as the executor knows it now."""

    id: int
    output_path: str
    kernel_name: str
    queued_at: datetime
    max_attempts: int
    timeout_seconds: int
    cell_timeout_seconds: int | None
    resources: RunResources | None = Field(default=None, description="What the run asked for (its pod's).")
    cancel_requested: bool
    progress: ProgressOut
    error: ErrorDetails | None
    results: list[RecordedResult]
    retry: RetryPolicy
    not_before: datetime | None = Field(description="A retry waits for its backoff until then.")


class NotebookFileOut(BaseModel):
    """A notebook file of a user's folder, as the prototype listed it."""

    name: str
    path: str = Field(description="Where it is inside a run and in JupyterHub: /home/<username>/...")
    relative_path: str = Field(description="Relative to the user's folder (what `file_path` stores).")
    size: int = Field(description="Bytes.")
    modified: datetime


class UserNotebooksOut(BaseModel):
    """``GET /list-notebooks/{username}``: the prototype's shape."""

    username: str
    user_home: str
    notebook_count: int
    notebooks: list[NotebookFileOut]


class InferredParameter(BaseModel):
    """A definition proposed from the notebook's ``parameters`` cell: what ``POST /db/parameters``
    (or the bulk form) takes."""

    param_name: str
    param_type: str
    default_value: Any | None
    description: str | None
    required: bool
    validation_rules: dict[str, Any] | None


class InferredParametersOut(BaseModel):
    username: str
    path: str = Field(description="Relative to the user's folder.")
    has_parameters_cell: bool
    parameters: list[InferredParameter]
