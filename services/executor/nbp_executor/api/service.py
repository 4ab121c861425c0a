"""The executor's operations behind the routes: submit (every check before anything is queued),
follow, cancel, fetch the output, list."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from nbp_common import paths
from nbp_common.auth import Principal, ensure_acting_for
from nbp_common.errors import Conflict, Forbidden, Invalid, NotFound
from nbp_common.events import TERMINAL, ExecutionStatus
from nbp_common.params import infer_definition
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nbp_executor.intake import parameters, workspace
from nbp_executor.intake.notebooks import InputNotebook, inspect_parameters, read_input
from nbp_executor.models import Job, OutboxEvent, queued_state
from nbp_executor.queueing import jobs, wakeups
from nbp_executor.retries import policy as retries
from nbp_executor.runners import PodRunner
from nbp_executor.runners.kernels import kernel_names
from nbp_executor.runtime import ExecutorRuntime
from nbp_executor.schemas import ExecutionState, ProgressOut, RunRequest


def execution_out(job: Job) -> ExecutionState:
    return ExecutionState.model_validate(
        {
            **{
                c.key: getattr(job, c.key)
                for c in Job.__table__.columns
                if c.key in ExecutionState.model_fields
            },
            **jobs.run_record(job),
            "retry": retries.policy_of(job),
            "progress": ProgressOut(
                cells_done=job.cells_done, cells_total=job.cells_total, current_cell=job.current_cell
            ),
        }
    )


async def _existing(session: AsyncSession, username: str, key: str) -> Job | None:
    result: Job | None = await session.scalar(
        select(Job).where(Job.username == username, Job.idempotency_key == key)
    )
    return result


@dataclass(frozen=True)
class Target:
    """Whose run it is and which notebook, before the file is looked at."""

    username: str
    notebook: dict[str, Any] | None
    relative: str
    field: str


@dataclass(frozen=True)
class CheckedRun:
    """A run that passed every check on its notebook: the file, its parameters, its kernel."""

    username: str
    notebook: dict[str, Any] | None
    source: workspace.ResolvedPath
    info: InputNotebook
    parameters: dict[str, Any]
    kernel_name: str


def owner_groups(principal: Principal, owner: str) -> list[str]:
    """The run owner's realm groups, as the caller's token names them: known only when the owner is the
    caller (an admin or a service acting for someone has its own groups, not the owner's)."""
    return sorted(principal.groups) if principal.username == owner else []


async def run_target(rt: ExecutorRuntime, request: RunRequest, principal: Principal) -> Target:
    """The run's owner (a registered notebook's, or the request's) and notebook; 403/404 otherwise."""
    notebook: dict[str, Any] | None = None
    if request.notebook_id is not None:
        notebook = await rt.registry.notebook(request.notebook_id)
        owner = str(notebook["username"])
        if not principal.may_read(owner):
            raise NotFound(f"notebook {request.notebook_id} does not exist")
        if request.username is not None and request.username != owner:
            raise Forbidden(
                f"notebook {request.notebook_id} belongs to {owner}; it runs in its owner's folder"
            )
        found = Target(owner, notebook, str(notebook["file_path"]), "notebook_id")
    else:
        assert request.notebook_path is not None
        owner, relative = _path_owner(request.notebook_path, request.username, principal, request.path_field)
        found = Target(owner, None, relative, request.path_field)
    ensure_acting_for(principal, found.username)
    return found


async def check_run(rt: ExecutorRuntime, run: Target, request: RunRequest) -> CheckedRun:
    """The file, its parameters (the registered definitions, if any) and the kernel, or the error."""
    source = workspace.resolve(rt.settings.workspace, run.username, run.relative, run.field)
    notebook = run.notebook
    if notebook is None:
        # A notebook at a registered path is a registered notebook: its definitions apply.
        notebook = await rt.registry.notebook_at(run.username, source.relative)
    info = read_input(source.absolute, run.field)
    values = parameters.resolve(notebook["parameters"] if notebook is not None else None, request.parameters)

    kernel = request.kernel_name or info.kernel_name or rt.settings.executor_default_kernel
    installed = kernel_names()
    if kernel not in installed:
        origin = "" if request.kernel_name else " (the notebook's metadata asks for it; pass kernel_name)"
        raise Invalid.field(
            "kernel_name",
            "kernel",
            f"no kernel named {kernel!r} is installed{origin}; installed: {', '.join(sorted(installed))}",
        )
    return CheckedRun(run.username, notebook, source, info, values, kernel)


async def submit(
    rt: ExecutorRuntime,
    session: AsyncSession,
    request: RunRequest,
    principal: Principal,
    idempotency_key: str | None = None,
) -> tuple[Job, bool]:
    """Check everything, then queue the run. Returns the job and whether it is new (an idempotent
    replay returns the first run). A run is in its owner's name: the caller's, unless an admin's."""
    settings = rt.settings
    parameters.check_size(request.parameters, settings.executor_max_parameters_bytes)
    run = await run_target(rt, request, principal)
    username = run.username

    if idempotency_key is not None:
        existing = await _existing(session, username, idempotency_key)
        if existing is not None:
            return existing, False

    checked = await check_run(rt, run, request)
    source, info, notebook = checked.source, checked.info, checked.notebook

    output: str | None = None
    if request.output_path is not None:
        if workspace.is_url(request.output_path):
            output = workspace.check_output_url(request.output_path, "output_path")
        else:
            target = workspace.resolve(settings.workspace, username, request.output_path, "output_path")
            if not target.relative.endswith(".ipynb"):
                raise Invalid.field("output_path", "suffix", "must name a .ipynb file")
            if target.absolute == source.absolute:
                raise Invalid.field("output_path", "not_input", "must not overwrite the input notebook")
            output = target.relative

    if isinstance(rt.runner, PodRunner):
        rt.runner.check_resources(request.resources)
    elif request.resources is not None:
        raise Invalid.field(
            "resources",
            "runner",
            f"only runs in pods (the kubernetes runner) take resources; this "
            f"executor's runner is {rt.runner.name} (its limits are its settings)",
        )
    timeout = request.timeout_seconds or settings.executor_default_timeout_seconds
    cell_timeout = request.cell_timeout_seconds or settings.executor_default_cell_timeout_seconds

    run_id = await jobs.next_id(session)
    values_row: dict[str, Any] = {
        "id": run_id,
        "attempt": 1,
        "max_attempts": settings.executor_max_attempts,
        "idempotency_key": idempotency_key,
        "username": username,
        "notebook_id": notebook["id"] if notebook is not None else None,
        "notebook_name": notebook["name"] if notebook is not None else None,
        "input_path": source.relative,
        "output_path": output or workspace.default_output(PurePosixPath(source.relative).stem, run_id),
        "parameters": checked.parameters,
        "kernel_name": checked.kernel_name,
        "timeout_seconds": timeout,
        "cell_timeout_seconds": cell_timeout,
        "resources": request.resources.model_dump(exclude_none=True) if request.resources else None,
        "tags": list(request.tags),
        "owner_groups": owner_groups(principal, username),
        "input_sha256": info.sha256,
        "has_parameters_cell": info.has_parameters_cell,
        "cells_total": info.cells,
        **queued_state(jobs.utcnow()),
        **retries.columns(request.retry),
    }
    try:
        job = await jobs.insert(session, values_row)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        if idempotency_key is not None:
            existing = await _existing(session, username, idempotency_key)
            if existing is not None:
                return existing, False
        raise
    return job, True


def _path_owner(path: str, username: str | None, principal: Principal, field: str) -> tuple[str, str]:
    """Whose folder a path is in, and the path inside it: ``username`` when given (an absolute path
    must then be under that user's home), else the user whose home an absolute path names (who must be
    the caller, unless an admin asks), else the caller."""
    if username is not None:
        return username, paths.relative_to_owner(path, username, field)
    split = paths.owner_of(path, principal.username, field)
    owner = split.home_of or principal.username
    if owner != principal.username and not principal.is_admin:
        paths.relative_to_owner(path, principal.username, field)  # 403, naming the field and the rule
    return owner, split.relative


async def get(session: AsyncSession, run_id: int, principal: Principal) -> Job:
    """The run, if the caller may see it (another user's run is answered as if it did not exist)."""
    job = await session.get(Job, run_id, populate_existing=True)
    if job is None or not principal.may_read(job.username):
        raise NotFound(f"execution {run_id} does not exist")
    return job


async def wait_until_ended(
    rt: ExecutorRuntime, session: AsyncSession, run_id: int, principal: Principal
) -> Job:
    """The run once it has ended (a long poll woken by NOTIFY, with a slow poll as the safety net)."""
    signal = rt.notifications[wakeups.ENDED]
    while True:
        ticket = signal.ticket(run_id)
        job = await get(session, run_id, principal)
        if job.status in TERMINAL:
            return job
        await session.rollback()  # end the snapshot: the next look must see new commits
        await signal.wait(ticket, 2.0)


# How long a synchronous endpoint waits for the history to hold a run's last state. Past it (the history
# is away) the answer goes out anyway: the outbox still delivers the record when the history is back.
RECORD_WAIT_SECONDS = 30.0


async def wait_until_recorded(rt: ExecutorRuntime, session: AsyncSession, run_id: int) -> bool:
    """Whether every event of the run reached the history (waiting up to ``RECORD_WAIT_SECONDS``)."""
    signal = rt.notifications[wakeups.OUTBOX]
    deadline = asyncio.get_running_loop().time() + RECORD_WAIT_SECONDS
    while True:
        ticket = signal.ticket()
        pending = await session.scalar(
            select(func.count(OutboxEvent.id)).where(
                OutboxEvent.job_id == run_id, OutboxEvent.delivered_at.is_(None)
            )
        )
        await session.rollback()  # end the snapshot: the next look must see the relay's commits
        if not pending:
            return True
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return False
        # The relay's deliveries do not signal; a short poll bounds the wait to a few tens of ms.
        await signal.wait(ticket, min(0.05, remaining))


async def infer_parameters(rt: ExecutorRuntime, username: str, path: str) -> dict[str, Any]:
    """The definitions a notebook's ``parameters`` cell implies, by Papermill's own inspection."""
    source = workspace.resolve(rt.settings.workspace, username, path, "path")
    info = read_input(source.absolute, "path")
    found = await asyncio.to_thread(inspect_parameters, source.absolute) if info.has_parameters_cell else {}
    return {
        "username": username,
        "path": source.relative,
        "has_parameters_cell": info.has_parameters_cell,
        "parameters": [
            infer_definition(name, p.get("inferred_type_name"), str(p.get("default", "")), p.get("help"))
            for name, p in found.items()
        ],
    }


async def cancel(session: AsyncSession, run_id: int, principal: Principal) -> Job:
    job = await session.get(Job, run_id, with_for_update=True, populate_existing=True)
    if job is None or not principal.may_read(job.username):
        raise NotFound(f"execution {run_id} does not exist")
    ensure_acting_for(principal, job.username)
    if job.status in TERMINAL:
        ended = job.status
        await session.rollback()
        raise Conflict(f"execution {run_id} has already ended ({ended}); there is nothing to cancel")
    job.cancel_requested = True
    if job.status == ExecutionStatus.QUEUED:
        job.status = ExecutionStatus.CANCELLED
        job.completed_at = jobs.utcnow()
        job.error_message = "cancelled before it started"
        await jobs.record_transition(session, job)
    else:
        await jobs.notify(session, wakeups.CANCEL, str(run_id))
    await session.commit()
    return job


async def active(session: AsyncSession, username: str | None, limit: int, offset: int) -> Sequence[Job]:
    query = select(Job).where(Job.status.in_((ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)))
    if username is not None:
        query = query.where(Job.username == username)
    rows = await session.scalars(query.order_by(Job.id).limit(limit).offset(offset))
    return rows.all()


def _local_output(rt: ExecutorRuntime, job: Job) -> Path:
    folder = workspace.user_folder(rt.settings.workspace, job.username)
    return folder / job.output_path


def _render_html(content: str) -> str:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.reads(content, as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    return str(body)


def _read_output(rt: ExecutorRuntime, job: Job) -> str | None:
    if workspace.is_url(job.output_path):
        from papermill.iorw import papermill_io

        try:
            return str(papermill_io.read(job.output_path))
        except Exception:
            return None
    path = _local_output(rt, job)
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


async def output(rt: ExecutorRuntime, job: Job, html: bool) -> str:
    content = await asyncio.to_thread(_read_output, rt, job)
    if content is None:
        state = "has not started" if job.status == ExecutionStatus.QUEUED else f"is {job.status}"
        raise NotFound(f"execution {job.id} has no output notebook yet (the run {state})")
    if html:
        return await asyncio.to_thread(_render_html, content)
    json.loads(content)  # an unreadable file is a 500 worth seeing, not a silent pass-through
    return content
