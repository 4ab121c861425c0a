"""The registry's HTTP surface: the seed's paths, methods and field names. Thin: the service decides."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from nbp_common.api import IdPath, PageDep, with_total
from nbp_common.auth import Reader, Writer, ensure_acting_for, owner_scope
from nbp_common.db import AutocommitSessionDep, DatabaseDep, SessionDep
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
async def create_notebook(body: NotebookCreate, database: DatabaseDep, caller: Writer) -> Response:
    """Register a notebook (its file is relative to the user's workspace folder)."""
    created = await service.create_notebook_json(database, body, caller)
    return Response(created, status_code=status.HTTP_201_CREATED, media_type="application/json")


@notebooks.get("", response_model=list[NotebookOut])
async def list_notebooks(
    session: AutocommitSessionDep,
    page: PageDep,
    response: Response,
    caller: Reader,
    username: Annotated[str | None, Query(max_length=255)] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    name: Annotated[str | None, Query(max_length=255, description="Part of the name, any case.")] = None,
) -> Sequence[Any]:
    """Notebooks, oldest first; the total is in `X-Total-Count`. Users see their own, admins all."""
    total, items = await service.list_notebooks(
        session, page, username=username, tag=tag, name=name, owner=owner_scope(caller)
    )
    return with_total(response, total, items)


@notebooks.get("/user/{username}", response_model=list[NotebookOut])
async def list_user_notebooks(
    username: Username, session: AutocommitSessionDep, page: PageDep, response: Response, caller: Reader
) -> Any:
    """One user's notebooks (your own; anyone's for an admin)."""
    ensure_acting_for(caller, username)
    total, items = await service.list_notebooks(session, page, username=username)
    return with_total(response, total, items)


@notebooks.get("/{id}", response_model=NotebookDetail, responses=_404)
async def get_notebook(id: IdPath, database: DatabaseDep, caller: Reader) -> Response:
    """A notebook with its parameter definitions."""
    detail = await service.get_notebook_detail_json(database, id, caller)
    return Response(detail, media_type="application/json")


@notebooks.put("/{id}", response_model=NotebookOut, responses={**_404, **_409})
async def update_notebook(id: IdPath, body: NotebookUpdate, session: SessionDep, caller: Writer) -> Any:
    """Change the fields sent; the others stay."""
    return await service.update_notebook(session, id, body, caller)


@notebooks.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT, responses=_404)
async def delete_notebook(id: IdPath, session: SessionDep, caller: Writer) -> None:
    """Remove a notebook and its parameters (its executions stay in the history)."""
    await service.delete_notebook(session, id, caller)


@parameters.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ParameterOut, responses={**_404, **_409}
)
async def create_parameter(body: ParameterCreate, session: SessionDep, caller: Writer) -> Any:
    """Define a parameter of a notebook; its default must satisfy its own type and rules."""
    return await service.create_parameter(session, body, caller)


@parameters.post(
    "/bulk/{notebook_id}",
    status_code=status.HTTP_201_CREATED,
    response_model=list[ParameterOut],
    responses={**_404, **_409},
)
async def create_parameters(
    notebook_id: IdPath, body: BulkParameters, session: SessionDep, caller: Writer
) -> Any:
    """Define several parameters at once: all are stored, or none."""
    return await service.create_parameters(session, notebook_id, body, caller)


@parameters.get("/notebook/{id}", response_model=list[ParameterOut], responses=_404)
async def list_notebook_parameters(id: IdPath, session: AutocommitSessionDep, caller: Reader) -> Any:
    """A notebook's parameter definitions."""
    return await service.list_parameters(session, id, caller)


@parameters.get("/{id}", response_model=ParameterOut, responses=_404)
async def get_parameter(id: IdPath, session: AutocommitSessionDep, caller: Reader) -> Any:
    return await service.get_parameter(session, id, caller)


@parameters.put("/{id}", response_model=ParameterOut, responses={**_404, **_409})
async def update_parameter(id: IdPath, body: ParameterUpdate, session: SessionDep, caller: Writer) -> Any:
    """Change the fields sent; the result must still be a consistent definition."""
    return await service.update_parameter(session, id, body, caller)


@parameters.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT, responses=_404)
async def delete_parameter(id: IdPath, session: SessionDep, caller: Writer) -> None:
    await service.delete_parameter(session, id, caller)
