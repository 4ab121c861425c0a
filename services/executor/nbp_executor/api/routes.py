"""The executor's HTTP surface: the seed's synchronous endpoints, and the ``/executions`` resource."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse
from nbp_common.api import IdPath, PageDep
from nbp_common.auth import Principal, Reader, Writer, ensure_acting_for
from nbp_common.db import SessionDep
from nbp_common.errors import ErrorBody
from nbp_common.paths import HOME_ROOT

from nbp_executor.api import service
from nbp_executor.intake import workspace
from nbp_executor.runtime import ExecutorRuntime, get_runtime
from nbp_executor.schemas import (
    ExecuteNotebookRequest,
    ExecuteRequest,
    ExecutionState,
    InferredParametersOut,
    NotebookFileOut,
    RunNotebookRequest,
    RunRequest,
    Username,
    UserNotebooksOut,
)

Runtime = Annotated[ExecutorRuntime, Depends(get_runtime)]
Wait = Annotated[
    bool,
    Query(description="Answer when the run has ended (default); false: 202 at once with the run's id."),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="The same key from the same user returns the first run instead of starting another.",
    ),
]

_SUBMIT_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "A path leads outside the user's folder."},
    404: {"model": ErrorBody, "description": "No such notebook (file, or registered id)."},
    413: {"model": ErrorBody, "description": "Parameters over 64 KB."},
    503: {"model": ErrorBody, "description": "The registry is not reachable."},
}
_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "No such execution."}}

seed = APIRouter(tags=["execute"])
executions = APIRouter(prefix="/executions", tags=["executions"])


def _location(run_id: int) -> str:
    return f"/executions/{run_id}"


async def _run(
    rt: ExecutorRuntime, session: SessionDep, request: RunRequest, caller: Principal, wait: bool
) -> Response:
    job, _ = await service.submit(rt, session, request, caller)
    if not wait:
        return JSONResponse(
            service.execution_out(job).model_dump(mode="json"),
            status_code=status.HTTP_202_ACCEPTED,
            headers={"Location": _location(job.id)},
        )
    job = await service.wait_until_ended(rt, session, job.id, caller)
    ended = service.execution_out(job).model_dump(mode="json")
    # As the prototype did: when the answer comes, GET /db/executions/{id} shows the ended run.
    await service.wait_until_recorded(rt, session, job.id)
    return JSONResponse(ended)


class _SeedRequest(Protocol):
    def run_request(self) -> RunRequest: ...


def _seed_run_route(path: str, name: str, model: type[_SeedRequest], description: str) -> None:
    """One of the seed's synchronous run endpoints: the same handler, each with its request model."""

    async def endpoint(
        body: Any, rt: Runtime, session: SessionDep, caller: Writer, wait: Wait = True
    ) -> Response:
        return await _run(rt, session, body.run_request(), caller, wait)

    endpoint.__annotations__["body"] = model  # what FastAPI validates the body as, and documents
    seed.post(
        path,
        name=name,
        description=description,
        response_model=ExecutionState,
        responses={**_SUBMIT_ERRORS, 202: {"model": ExecutionState, "description": "Queued (wait=false)."}},
    )(endpoint)


_seed_run_route(
    "/execute",
    "execute",
    ExecuteRequest,
    "Run a notebook of a user's folder (or a registered one) and answer with the ended run.",
)
_seed_run_route(
    "/run-notebook",
    "run_notebook",
    RunNotebookRequest,
    "Run `input_path` into `output_path`, both inside the user's folder.",
)
_seed_run_route(
    "/execute-notebook",
    "execute_notebook",
    ExecuteNotebookRequest,
    "The full form: kernel, timeouts, output, tags.",
)


@seed.get("/list-notebooks/{username}", response_model=UserNotebooksOut)
async def list_notebooks(username: Username, rt: Runtime, caller: Reader) -> Any:
    """The `.ipynb` files in the user's folder (run outputs in `outputs/` and hidden folders left out)."""
    ensure_acting_for(caller, username)
    home = f"{HOME_ROOT}/{username}"
    found = workspace.list_notebooks(rt.settings.workspace, username)
    return UserNotebooksOut(
        username=username,
        user_home=home,
        notebook_count=len(found),
        notebooks=[
            NotebookFileOut(
                name=f.name,
                path=f"{home}/{f.path}",
                relative_path=f.path,
                size=f.size,
                modified=f.modified_at,
            )
            for f in found
        ],
    )


@seed.get(
    "/list-notebooks/{username}/parameters",
    response_model=InferredParametersOut,
    responses={404: {"model": ErrorBody, "description": "No such notebook file."}},
)
async def infer_parameters(
    username: Username,
    rt: Runtime,
    caller: Reader,
    path: Annotated[
        str, Query(min_length=1, max_length=1024, description="Relative, or /home/<username>/...")
    ],
) -> Any:
    """The parameter definitions a notebook's `parameters` cell implies (Papermill's inspection: types
    from annotations and values, defaults, `# comments` as descriptions). Nothing is stored: register
    them with `POST /db/parameters/bulk/{notebook_id}`."""
    ensure_acting_for(caller, username)
    return await service.infer_parameters(rt, username, path)


@executions.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExecutionState,
    responses={**_SUBMIT_ERRORS, 200: {"model": ExecutionState, "description": "The run of that key."}},
)
async def create_execution(
    body: ExecuteNotebookRequest,
    rt: Runtime,
    session: SessionDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Queue a run; follow it at `Location`."""
    job, created = await service.submit(rt, session, body.run_request(), caller, idempotency_key)
    return JSONResponse(
        service.execution_out(job).model_dump(mode="json"),
        status_code=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        headers={"Location": _location(job.id)},
    )


@executions.get("", response_model=list[ExecutionState])
async def list_active(
    session: SessionDep,
    page: PageDep,
    caller: Reader,
    username: Annotated[str | None, Query(max_length=255)] = None,
) -> Any:
    """Your queued and running runs (an admin's: everyone's, or `username`'s), oldest first. Ended runs
    are in `/db/executions`."""
    if not caller.is_admin:
        if username not in (None, caller.username):
            return []
        username = caller.username
    return [
        service.execution_out(j) for j in await service.active(session, username, page.limit, page.offset)
    ]


@executions.get("/{id}", response_model=ExecutionState, responses=_404)
async def get_execution(id: IdPath, session: SessionDep, caller: Reader) -> Any:
    """A run's live state: status, progress (cells done of total, the current cell), error, results."""
    return service.execution_out(await service.get(session, id, caller))


@executions.post(
    "/{id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExecutionState,
    responses={**_404, 409: {"model": ErrorBody, "description": "The run has already ended."}},
)
async def cancel_execution(id: IdPath, session: SessionDep, caller: Writer) -> Any:
    """Cancel: a queued run ends at once; a running one is interrupted, then killed (within 5 s)."""
    return service.execution_out(await service.cancel(session, id, caller))


@executions.get(
    "/{id}/output",
    responses={
        **_404,
        200: {"content": {"application/x-ipynb+json": {}, "text/html": {}}, "description": "The notebook."},
    },
)
async def get_output(
    id: IdPath,
    request: Request,
    rt: Runtime,
    session: SessionDep,
    caller: Reader,
    format: Annotated[Literal["ipynb", "html"], Query()] = "ipynb",
) -> Response:
    """The output notebook as `.ipynb` JSON, or rendered to HTML by nbconvert (`?format=html`)."""
    job = await service.get(session, id, caller)
    content = await service.output(rt, job, html=format == "html")
    if format == "html":
        return HTMLResponse(content)
    return Response(content, media_type="application/json")
