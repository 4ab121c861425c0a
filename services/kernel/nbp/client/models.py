"""The shapes the API answers with, as typed dictionaries (the JSON as it comes, fields named as the API
names them). Every field the API sends is there even when not listed; these list what clients use."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

RunStatus = Literal["queued", "running", "completed", "failed", "cancelled", "timed_out"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled", "timed_out"})


class Parameter(TypedDict, total=False):
    id: int
    notebook_id: int
    param_name: str
    param_type: str
    default_value: Any
    description: str | None
    required: bool
    validation_rules: dict[str, Any] | None
    created_at: str
    updated_at: str


class Notebook(TypedDict, total=False):
    id: int
    name: str
    description: str | None
    file_path: str
    username: str
    tags: list[str]
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    parameters: list[Parameter]


class Progress(TypedDict):
    cells_done: int
    cells_total: int | None
    current_cell: int | None


class Result(TypedDict, total=False):
    name: str
    value_numeric: float | None
    value_json: Any


class Run(TypedDict, total=False):
    """A run as the executor knows it now (``/executions/{id}``)."""

    id: int
    status: RunStatus
    username: str
    notebook_id: int | None
    notebook_name: str | None
    input_path: str
    output_path: str
    parameters: dict[str, Any]
    progress: Progress
    queued_at: str
    started_at: str | None
    completed_at: str | None
    duration_seconds: float | None
    error_message: str | None
    error: dict[str, Any] | None
    results: list[Result]


class Execution(TypedDict, total=False):
    """A run as the history records it (``/db/executions/{id}``), with the prototype's field names."""

    id: int
    notebook_id: int | None
    username: str
    input_path: str
    output_path: str | None
    parameters_used: dict[str, Any]
    status: RunStatus
    error_message: str | None
    execution_time_seconds: float | None
    started_at: str
    completed_at: str | None
    # Our earlier names of parameters_used and execution_time_seconds, still answered.
    parameters: dict[str, Any]
    duration_seconds: float | None


class NotebookFile(TypedDict, total=False):
    name: str
    path: str  # /home/<username>/...
    relative_path: str
    size: int
    modified: str


class InferredParameters(TypedDict):
    """What a notebook's parameters cell defines; ``parameters`` are ready for ``add_parameters``."""

    username: str
    path: str
    has_parameters_cell: bool
    parameters: list[Parameter]


JsonObject = dict[str, Any]
