"""The registry's operations. Routers stay thin; every rule about notebooks and parameters lives here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nbp_common.api import Page
from nbp_common.errors import Conflict, FieldError, Invalid, NotFound, violated_constraint
from nbp_common.params import check_definition, check_value
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nbp_registry.models import Notebook, Parameter
from nbp_registry.schemas import (
    NotebookCreate,
    NotebookUpdate,
    ParameterCreate,
    ParameterFields,
    ParameterUpdate,
)

# Unique constraints, by the name the naming convention gives them, and how to say what clashed.
_UNIQUE_FIELDS = {
    "uq_notebooks_name_username": ("name", "this user already has a notebook with that name"),
    "uq_notebooks_file_path": ("file_path", "another notebook is already registered at that file_path"),
    "uq_notebook_parameters_notebook_id_param_name": (
        "param_name",
        "the notebook already has that parameter",
    ),
}
_NOT_NULL = ("name", "file_path", "username", "tags", "metadata", "param_name", "param_type", "required")


def _conflict(exc: IntegrityError, prefix: str = "") -> Conflict:
    field, message = _UNIQUE_FIELDS.get(
        violated_constraint(exc) or "", ("", "conflicts with a stored record")
    )
    return Conflict(
        f"{prefix}{field}: {message}" if field else message,
        errors=[FieldError(field=f"{prefix}{field}", rule="unique", message=message)] if field else None,
    )


def _refuse_nulls(changes: dict[str, Any]) -> None:
    nulls = [name for name in _NOT_NULL if name in changes and changes[name] is None]
    if nulls:
        raise Invalid.fields([FieldError(field=n, rule="not_null", message="cannot be null") for n in nulls])


def definition_errors(
    param_type: str, default_value: Any, rules: dict[str, Any] | None, prefix: str = ""
) -> list[FieldError]:
    """Rules that make no sense for the type, and a default that breaks its own type or rules."""
    errors = [
        FieldError(
            field=f"{prefix}validation_rules" + (f".{v.where}" if v.where else ""),
            rule=v.rule,
            message=v.message,
        )
        for v in check_definition(param_type, rules)
    ]
    if not errors and default_value is not None:
        errors += [
            FieldError(field=f"{prefix}default_value", rule=v.rule, message=v.message)
            for v in check_value(param_type, rules, default_value)
        ]
    return errors


# Notebooks


def _notebook_filters(
    query: Select[Any], username: str | None, tag: str | None, name: str | None
) -> Select[Any]:
    if username is not None:
        query = query.where(Notebook.username == username)
    if tag is not None:
        query = query.where(Notebook.tags.contains([tag]))
    if name is not None:
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Notebook.name.ilike(f"%{escaped}%", escape="\\"))
    return query


async def list_notebooks(
    session: AsyncSession,
    page: Page,
    *,
    username: str | None = None,
    tag: str | None = None,
    name: str | None = None,
) -> tuple[int, Sequence[Notebook]]:
    total = await session.scalar(_notebook_filters(select(func.count(Notebook.id)), username, tag, name))
    rows = await session.scalars(
        _notebook_filters(select(Notebook), username, tag, name)
        .order_by(Notebook.id)
        .limit(page.limit)
        .offset(page.offset)
    )
    return total or 0, rows.all()


async def get_notebook(session: AsyncSession, notebook_id: int) -> Notebook:
    notebook = await session.get(Notebook, notebook_id)
    if notebook is None:
        raise NotFound(f"notebook {notebook_id} does not exist")
    return notebook


# The registry's hottest read, a notebook with its parameters, is rendered to JSON by PostgreSQL in one
# query: no ORM objects and no model validation between the row and the answer (bench/ measures it). It
# is plain SQL sent straight through asyncpg (a prepared statement on each pooled connection): the ORM's
# per-statement overhead is larger than the query itself. Timestamps are written the way pydantic writes
# a UTC datetime, so that every answer agrees.
_UTC = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
NOTEBOOK_DETAIL_SQL = f"""
    SELECT json_build_object(
        'id', n.id, 'name', n.name, 'description', n.description, 'file_path', n.file_path,
        'username', n.username, 'tags', n.tags, 'metadata', n.metadata,
        'created_at', {_UTC.format("n.created_at")}, 'updated_at', {_UTC.format("n.updated_at")},
        'parameters', COALESCE((
            SELECT json_agg(json_build_object(
                'id', p.id, 'notebook_id', p.notebook_id, 'param_name', p.param_name,
                'param_type', p.param_type, 'default_value', p.default_value, 'description', p.description,
                'required', p.required, 'validation_rules', p.validation_rules,
                'created_at', {_UTC.format("p.created_at")}, 'updated_at', {_UTC.format("p.updated_at")}
            ) ORDER BY p.id)
            FROM registry.notebook_parameters AS p WHERE p.notebook_id = n.id
        ), '[]'::json)
    )::text
    FROM registry.notebooks AS n WHERE n.id = $1
"""


async def get_notebook_detail_json(session: AsyncSession, notebook_id: int) -> str:
    """The notebook with its parameters, as the JSON text of a ``NotebookDetail``."""
    asyncpg_connection = (await (await session.connection()).get_raw_connection()).driver_connection
    assert asyncpg_connection is not None  # a pooled connection that is checked out always has one
    body = await asyncpg_connection.fetchval(NOTEBOOK_DETAIL_SQL, notebook_id)
    if body is None:
        raise NotFound(f"notebook {notebook_id} does not exist")
    return str(body)


async def create_notebook(session: AsyncSession, data: NotebookCreate) -> Notebook:
    values = data.model_dump()
    notebook = Notebook(**{("metadata_" if k == "metadata" else k): v for k, v in values.items()})
    session.add(notebook)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise _conflict(exc) from exc
    return notebook


async def update_notebook(session: AsyncSession, notebook_id: int, data: NotebookUpdate) -> Notebook:
    changes = data.model_dump(exclude_unset=True)
    _refuse_nulls(changes)
    notebook = await get_notebook(session, notebook_id)
    for key, value in changes.items():
        setattr(notebook, "metadata_" if key == "metadata" else key, value)
    notebook.updated_at = func.now()  # moves even when the values sent equal the stored ones
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise _conflict(exc) from exc
    await session.refresh(notebook)
    return notebook


async def delete_notebook(session: AsyncSession, notebook_id: int) -> None:
    notebook = await get_notebook(session, notebook_id)
    await session.delete(notebook)  # its parameters go with it (ON DELETE CASCADE)
    await session.commit()


# Parameters


async def list_parameters(session: AsyncSession, notebook_id: int) -> Sequence[Parameter]:
    await get_notebook(session, notebook_id)
    rows = await session.scalars(
        select(Parameter).where(Parameter.notebook_id == notebook_id).order_by(Parameter.id)
    )
    return rows.all()


async def get_parameter(session: AsyncSession, parameter_id: int) -> Parameter:
    parameter = await session.get(Parameter, parameter_id)
    if parameter is None:
        raise NotFound(f"parameter {parameter_id} does not exist")
    return parameter


def _checked(fields: ParameterFields, prefix: str = "") -> list[FieldError]:
    return definition_errors(fields.param_type, fields.default_value, fields.validation_rules, prefix)


async def create_parameter(session: AsyncSession, data: ParameterCreate) -> Parameter:
    errors = _checked(data)
    if errors:
        raise Invalid.fields(errors)
    if await session.get(Notebook, data.notebook_id) is None:
        raise NotFound(
            f"notebook {data.notebook_id} does not exist",
            errors=[FieldError(field="notebook_id", rule="exists", message="no notebook has this id")],
        )
    parameter = Parameter(**data.model_dump())
    session.add(parameter)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise _conflict(exc) from exc
    return parameter


async def create_parameters(
    session: AsyncSession, notebook_id: int, items: Sequence[ParameterFields]
) -> Sequence[Parameter]:
    """All or nothing: one bad item and none is stored."""
    errors = [error for index, item in enumerate(items) for error in _checked(item, f"[{index}].")]
    if errors:
        raise Invalid.fields(errors)
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if item.param_name in seen:
            message = f"repeats the name of item {seen[item.param_name]}"
            raise Conflict(
                f"[{index}].param_name: {message}",
                errors=[FieldError(field=f"[{index}].param_name", rule="unique", message=message)],
            )
        seen[item.param_name] = index
    await get_notebook(session, notebook_id)
    parameters = [Parameter(notebook_id=notebook_id, **item.model_dump()) for item in items]
    session.add_all(parameters)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise _conflict(exc) from exc
    return parameters


async def update_parameter(session: AsyncSession, parameter_id: int, data: ParameterUpdate) -> Parameter:
    changes = data.model_dump(exclude_unset=True)
    _refuse_nulls(changes)
    parameter = await get_parameter(session, parameter_id)
    merged = {
        "param_type": changes.get("param_type", parameter.param_type),
        "default_value": changes.get("default_value", parameter.default_value),
        "rules": changes.get("validation_rules", parameter.validation_rules),
    }
    errors = definition_errors(merged["param_type"], merged["default_value"], merged["rules"])
    if errors:
        raise Invalid.fields(errors)
    for key, value in changes.items():
        setattr(parameter, key, value)
    parameter.updated_at = func.now()
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise _conflict(exc) from exc
    await session.refresh(parameter)
    return parameter


async def delete_parameter(session: AsyncSession, parameter_id: int) -> None:
    parameter = await get_parameter(session, parameter_id)
    await session.delete(parameter)
    await session.commit()
