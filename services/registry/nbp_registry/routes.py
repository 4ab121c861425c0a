"""The registry's HTTP surface: the seed's paths, methods and field names. Thin: the service decides."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from nbp_common.api import IdPath, PageDep, with_total
from nbp_common.db import ReadSessionDep, SessionDep
from nbp_common.errors import ErrorBody

from nbp_registry import service
from nbp_registry.schemas import (
    BulkParameters,
    NotebookCreate,
    NotebookDetail,
    NotebookOut,
    NotebookUpdate,
    ParameterCreate,
    ParameterOut,
    ParameterUpdate,
    Username,
)

_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "No record with that id."}}
_409: dict[int | str, dict[str, Any]] = {409: {"model": ErrorBody, "description": "A unique value is taken."}}

notebooks = APIRouter(prefix="/db/notebooks", tags=["notebooks"])
parameters = APIRouter(prefix="/db/parameters", tags=["parameters"])


@notebooks.post("", status_code=status.HTTP_201_CREATED, response_model=NotebookOut, responses=_409)
async def create_notebook(body: NotebookCreate, session: SessionDep) -> Any:
    """Register a notebook (its file is relative to the user's workspace folder)."""
    return await service.create_notebook(session, body)


@notebooks.get("", response_model=list[NotebookOut])
async def list_notebooks(
    session: ReadSessionDep,
    page: PageDep,
    response: Response,
    username: Annotated[str | None, Query(max_length=255)] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    name: Annotated[str | None, Query(max_length=255, description="Part of the name, any case.")] = None,
) -> Sequence[Any]:
    """Notebooks, oldest first; the total is in `X-Total-Count`."""
    total, items = await service.list_notebooks(session, page, username=username, tag=tag, name=name)
    return with_total(response, total, items)


@notebooks.get("/user/{username}", response_model=list[NotebookOut])
async def list_user_notebooks(
    username: Username, session: ReadSessionDep, page: PageDep, response: Response
) -> Any:
    """One user's notebooks."""
    total, items = await service.list_notebooks(session, page, username=username)
    return with_total(response, total, items)


@notebooks.get("/{id}", response_model=NotebookDetail, responses=_404)
async def get_notebook(id: IdPath, session: ReadSessionDep) -> Response:
    """A notebook with its parameter definitions."""
    return Response(await service.get_notebook_detail_json(session, id), media_type="application/json")


@notebooks.put("/{id}", response_model=NotebookOut, responses={**_404, **_409})
async def update_notebook(id: IdPath, body: NotebookUpdate, session: SessionDep) -> Any:
    """Change the fields sent; the others stay."""
    return await service.update_notebook(session, id, body)


@notebooks.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT, responses=_404)
async def delete_notebook(id: IdPath, session: SessionDep) -> None:
    """Remove a notebook and its parameters (its executions stay in the history)."""
    await service.delete_notebook(session, id)


@parameters.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ParameterOut, responses={**_404, **_409}
)
async def create_parameter(body: ParameterCreate, session: SessionDep) -> Any:
    """Define a parameter of a notebook; its default must satisfy its own type and rules."""
    return await service.create_parameter(session, body)


@parameters.post(
    "/bulk/{notebook_id}",
    status_code=status.HTTP_201_CREATED,
    response_model=list[ParameterOut],
    responses={**_404, **_409},
)
async def create_parameters(notebook_id: IdPath, body: BulkParameters, session: SessionDep) -> Any:
    """Define several parameters at once: all are stored, or none."""
    return await service.create_parameters(session, notebook_id, body)


@parameters.get("/notebook/{id}", response_model=list[ParameterOut], responses=_404)
async def list_notebook_parameters(id: IdPath, session: ReadSessionDep) -> Any:
    """A notebook's parameter definitions."""
    return await service.list_parameters(session, id)


@parameters.get("/{id}", response_model=ParameterOut, responses=_404)
async def get_parameter(id: IdPath, session: ReadSessionDep) -> Any:
    return await service.get_parameter(session, id)


@parameters.put("/{id}", response_model=ParameterOut, responses={**_404, **_409})
async def update_parameter(id: IdPath, body: ParameterUpdate, session: SessionDep) -> Any:
    """Change the fields sent; the result must still be a consistent definition."""
    return await service.update_parameter(session, id, body)


@parameters.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT, responses=_404)
async def delete_parameter(id: IdPath, session: SessionDep) -> None:
    await service.delete_parameter(session, id)
