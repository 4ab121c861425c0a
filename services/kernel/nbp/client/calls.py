"""Every endpoint of the platform as a request description, shared by the sync and the async client
(which only send them): one place that knows paths, methods and field names."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Expect = Literal["json", "text", "bytes", "none"]


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    expect: Expect = "json"
    # Safe to send again after a 503 or a lost connection: reads, deletes, and submits with a key.
    retry: bool = True


def _query(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _fields(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


# Notebooks


def list_notebooks(
    *,
    username: str | None = None,
    tag: str | None = None,
    name: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Call:
    return Call(
        "GET", "/db/notebooks", _query(username=username, tag=tag, name=name, limit=limit, offset=offset)
    )


def get_notebook(notebook_id: int) -> Call:
    return Call("GET", f"/db/notebooks/{notebook_id}")


def create_notebook(
    *,
    name: str,
    file_path: str,
    username: str,
    description: str | None = None,
    tags: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Call:
    body = _fields(
        name=name,
        file_path=file_path,
        username=username,
        description=description,
        tags=tags,
        metadata=metadata,
    )
    return Call("POST", "/db/notebooks", json=body, retry=False)


def update_notebook(notebook_id: int, changes: Mapping[str, Any]) -> Call:
    return Call("PUT", f"/db/notebooks/{notebook_id}", json=dict(changes))


def delete_notebook(notebook_id: int) -> Call:
    return Call("DELETE", f"/db/notebooks/{notebook_id}", expect="none")


# Parameters


def list_parameters(notebook_id: int) -> Call:
    return Call("GET", f"/db/parameters/notebook/{notebook_id}")


def get_parameter(parameter_id: int) -> Call:
    return Call("GET", f"/db/parameters/{parameter_id}")


def create_parameter(notebook_id: int, definition: Mapping[str, Any]) -> Call:
    return Call("POST", "/db/parameters", json={**definition, "notebook_id": notebook_id}, retry=False)


def create_parameters(notebook_id: int, definitions: list[Mapping[str, Any]]) -> Call:
    return Call(
        "POST", f"/db/parameters/bulk/{notebook_id}", json=[dict(d) for d in definitions], retry=False
    )


def update_parameter(parameter_id: int, changes: Mapping[str, Any]) -> Call:
    return Call("PUT", f"/db/parameters/{parameter_id}", json=dict(changes))


def delete_parameter(parameter_id: int) -> Call:
    return Call("DELETE", f"/db/parameters/{parameter_id}", expect="none")


# Runs (the executor)


def submit(
    *,
    notebook_id: int | None = None,
    notebook_path: str | None = None,
    username: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    output_path: str | None = None,
    kernel_name: str | None = None,
    timeout_seconds: int | None = None,
    cell_timeout_seconds: int | None = None,
    tags: list[str] | None = None,
    idempotency_key: str | None = None,
) -> Call:
    body = _fields(
        notebook_id=notebook_id,
        notebook_path=notebook_path,
        username=username,
        parameters=dict(parameters or {}),
        output_path=output_path,
        kernel_name=kernel_name,
        timeout_seconds=timeout_seconds,
        cell_timeout_seconds=cell_timeout_seconds,
        tags=tags,
    )
    # The key makes the submit safe to retry: the same key answers the first run, never a second one.
    key = idempotency_key or uuid.uuid4().hex
    return Call("POST", "/executions", json=body, headers={"Idempotency-Key": key})


def get_run(run_id: int) -> Call:
    return Call("GET", f"/executions/{run_id}")


def active_runs(*, username: str | None = None, limit: int = 100, offset: int = 0) -> Call:
    return Call("GET", "/executions", _query(username=username, limit=limit, offset=offset))


def cancel_run(run_id: int) -> Call:
    return Call("POST", f"/executions/{run_id}/cancel")


def output(run_id: int, *, html: bool = False) -> Call:
    return Call("GET", f"/executions/{run_id}/output", {"format": "html" if html else "ipynb"}, expect="text")


def list_schedules(*, username: str | None = None, limit: int = 100, offset: int = 0) -> Call:
    return Call("GET", "/schedules", _query(username=username, limit=limit, offset=offset))


def get_schedule(schedule_id: int) -> Call:
    return Call("GET", f"/schedules/{schedule_id}")


def create_schedule(body: Mapping[str, Any]) -> Call:
    return Call("POST", "/schedules", json=dict(body), retry=False)


def update_schedule(schedule_id: int, changes: Mapping[str, Any]) -> Call:
    return Call("PATCH", f"/schedules/{schedule_id}", json=dict(changes), retry=False)


def delete_schedule(schedule_id: int) -> Call:
    return Call("DELETE", f"/schedules/{schedule_id}", expect="none")


def run_schedule_now(schedule_id: int) -> Call:
    return Call("POST", f"/schedules/{schedule_id}/run-now", retry=False)


def schedule_runs(schedule_id: int, *, limit: int = 100, offset: int = 0) -> Call:
    return Call("GET", f"/schedules/{schedule_id}/runs", _query(limit=limit, offset=offset))


def list_files(username: str) -> Call:
    return Call("GET", f"/list-notebooks/{username}")


def infer_parameters(username: str, path: str) -> Call:
    return Call("GET", f"/list-notebooks/{username}/parameters", {"path": path})


# History


def list_executions(
    *,
    username: str | None = None,
    notebook_id: int | None = None,
    status: str | None = None,
    started_after: str | None = None,
    started_before: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Call:
    return Call(
        "GET",
        "/db/executions",
        _query(
            username=username,
            notebook_id=notebook_id,
            status=status,
            started_after=started_after,
            started_before=started_before,
            limit=limit,
            offset=offset,
        ),
    )


def get_execution(execution_id: int) -> Call:
    return Call("GET", f"/db/executions/{execution_id}")


def notebook_executions(notebook_id: int, *, limit: int = 100, offset: int = 0) -> Call:
    return Call("GET", f"/db/executions/notebook/{notebook_id}", {"limit": limit, "offset": offset})


def execution_results(execution_id: int) -> Call:
    return Call("GET", f"/db/executions/{execution_id}/results")


def stats(**filters: Any) -> Call:
    return Call("GET", "/db/executions/stats", _query(**filters))


# The platform


def root() -> Call:
    return Call("GET", "/")


def health() -> Call:
    return Call("GET", "/health")
