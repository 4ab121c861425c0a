"""The registry's operations. Routers stay thin; every rule about notebooks and parameters lives here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg
from nbp_common.api import Page
from nbp_common.auth import Principal, ensure_acting_for, owner_scope
from nbp_common.db import Database, utc_json_sql
from nbp_common.errors import Conflict, FieldError, Invalid, NotFound, violated_constraint
from nbp_common.params import check_definition, check_value
from nbp_common.paths import relative_to_owner
from sqlalchemy import Select, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nbp_registry.models import Notebook, Parameter
from nbp_registry.schemas import (
    BulkParameterItem,
    NotebookCreate,
    NotebookUpdate,
    ParameterCreate,
    ParameterFields,
    ParameterUpdate,
)

# Unique constraints, by the name the naming convention gives them, and how to say what clashed.
_UNIQUE_FIELDS = {
    "uq_notebooks_name_username": ("name", "this user already has a notebook with that name"),
    "uq_notebooks_username_file_path": (
        "file_path",
        "this user already has a notebook registered at that file_path",
    ),
    "uq_notebook_parameters_notebook_id_param_name": (
        "param_name",
        "the notebook already has that parameter",
    ),
}
_NOT_NULL = ("name", "file_path", "username", "tags", "metadata", "param_name", "param_type", "required")


def _conflict(exc: IntegrityError | str | None, prefix: str = "") -> Conflict:
    """The conflict a unique constraint reports (from SQLAlchemy's error, or asyncpg's constraint name)."""
    constraint = violated_constraint(exc) if isinstance(exc, IntegrityError) else exc
    field, message = _UNIQUE_FIELDS.get(constraint or "", ("", "conflicts with a stored record"))
    return Conflict(
        f"{prefix}{field}: {message}" if field else message,
        errors=[FieldError(field=f"{prefix}{field}", rule="unique", message=message)] if field else None,
    )


async def _commit(session: AsyncSession) -> None:
    """Commit, or roll back and say which unique value clashed (409)."""
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise _conflict(exc) from exc


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
    query: Select[Any], username: str | None, tag: str | None, name: str | None, owner: str | None
) -> Select[Any]:
    if owner is not None:
        query = query.where(Notebook.username == owner)
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
    owner: str | None = None,
) -> tuple[int, Sequence[Notebook]]:
    """Notebooks matching the filters; ``owner`` (when not None) narrows them to one user's."""
    total = await session.scalar(
        _notebook_filters(select(func.count(Notebook.id)), username, tag, name, owner)
    )
    rows = await session.scalars(
        _notebook_filters(select(Notebook), username, tag, name, owner)
        .order_by(Notebook.id)
        .limit(page.limit)
        .offset(page.offset)
    )
    return total or 0, rows.all()


async def get_notebook(
    session: AsyncSession, notebook_id: int, principal: Principal, *, write: bool = False
) -> Notebook:
    """The notebook, if the caller may see it (and change it, with ``write``); else as if it did not exist."""
    notebook = await session.get(Notebook, notebook_id)
    if notebook is None or not principal.may_read(notebook.username):
        raise NotFound(f"notebook {notebook_id} does not exist")
    if write:
        ensure_acting_for(principal, notebook.username)
    return notebook


# The registry's two hottest paths, reading a notebook with its parameters and registering one, are
# rendered to JSON by PostgreSQL in one statement each: no ORM objects and no model validation between
# the row and the answer (bench/registry_throughput.py measures it). They are plain SQL sent straight
# through asyncpg (prepared once per pooled connection): the ORM's per-statement overhead is larger than
# these statements. Timestamps are written the way pydantic writes a UTC datetime, so answers agree.
_NOTEBOOK_FIELDS = f"""
    'id', n.id, 'name', n.name, 'description', n.description, 'file_path', n.file_path,
    'username', n.username, 'tags', n.tags, 'metadata', n.metadata,
    'created_at', {utc_json_sql("n.created_at")}, 'updated_at', {utc_json_sql("n.updated_at")}
"""
NOTEBOOK_DETAIL_SQL = f"""
    SELECT json_build_object(
        {_NOTEBOOK_FIELDS},
        'parameters', COALESCE((
            SELECT json_agg(json_build_object(
                'id', p.id, 'notebook_id', p.notebook_id, 'param_name', p.param_name,
                'param_type', p.param_type, 'default_value', p.default_value, 'description', p.description,
                'required', p.required, 'validation_rules', p.validation_rules,
                'created_at', {utc_json_sql("p.created_at")}, 'updated_at', {utc_json_sql("p.updated_at")}
            ) ORDER BY p.id)
            FROM registry.notebook_parameters AS p WHERE p.notebook_id = n.id
        ), '[]'::json)
    )::text
    FROM registry.notebooks AS n WHERE n.id = $1 AND ($2::text IS NULL OR n.username = $2)
"""
# One statement, so atomic by itself: it needs no transaction around it.
_CREATE_NOTEBOOK_SQL = f"""
    INSERT INTO registry.notebooks AS n (name, description, file_path, username, tags, metadata)
    VALUES ($1, $2, $3, $4, $5, $6)
    RETURNING json_build_object({_NOTEBOOK_FIELDS})::text
"""


async def get_notebook_detail_json(database: Database, notebook_id: int, principal: Principal) -> str:
    """The notebook with its parameters, as the JSON text of a ``NotebookDetail`` (if the caller may
    see it: another user's notebook is answered as if it did not exist)."""
    async with database.driver_connection() as connection:
        body = await connection.fetchval(NOTEBOOK_DETAIL_SQL, notebook_id, owner_scope(principal))
    if body is None:
        raise NotFound(f"notebook {notebook_id} does not exist")
    return str(body)


async def create_notebook_json(database: Database, data: NotebookCreate, principal: Principal) -> str:
    """Register a notebook; the JSON text of the ``NotebookOut`` stored."""
    ensure_acting_for(principal, data.username)
    file_path = relative_to_owner(data.file_path, data.username, "file_path")
    try:
        async with database.driver_connection() as connection:
            # json/jsonb parameters are JSON text with the codecs SQLAlchemy's dialect gives its connections.
            body = await connection.fetchval(
                _CREATE_NOTEBOOK_SQL,
                data.name,
                data.description,
                file_path,
                data.username,
                json.dumps(data.tags),
                json.dumps(data.metadata),
            )
    except asyncpg.UniqueViolationError as exc:
        raise _conflict(exc.constraint_name) from exc
    return str(body)


async def update_notebook(
    session: AsyncSession, notebook_id: int, data: NotebookUpdate, principal: Principal
) -> Notebook:
    changes = data.model_dump(exclude_unset=True)
    _refuse_nulls(changes)
    notebook = await get_notebook(session, notebook_id, principal, write=True)
    if "username" in changes:
        ensure_acting_for(principal, changes["username"])
    if "file_path" in changes:
        owner = changes.get("username", notebook.username)
        changes["file_path"] = relative_to_owner(changes["file_path"], owner, "file_path")
    for key, value in changes.items():
        setattr(notebook, "metadata_" if key == "metadata" else key, value)
    notebook.updated_at = func.now()  # moves even when the values sent equal the stored ones
    await _commit(session)
    await session.refresh(notebook)
    return notebook


async def delete_notebook(session: AsyncSession, notebook_id: int, principal: Principal) -> None:
    await get_notebook(session, notebook_id, principal, write=True)
    # A statement, not session.delete(): the ORM would walk the lazy="raise" relationships of whatever
    # the session's identity map still holds; the database's ON DELETE CASCADE takes the parameters.
    await session.execute(delete(Notebook).where(Notebook.id == notebook_id))
    await session.commit()


# Parameters


async def list_parameters(
    session: AsyncSession, notebook_id: int, principal: Principal
) -> Sequence[Parameter]:
    await get_notebook(session, notebook_id, principal)
    rows = await session.scalars(
        select(Parameter).where(Parameter.notebook_id == notebook_id).order_by(Parameter.id)
    )
    return rows.all()


async def get_parameter(
    session: AsyncSession, parameter_id: int, principal: Principal, *, write: bool = False
) -> Parameter:
    """The parameter, if the caller may see its notebook (and change it, with ``write``)."""
    found = (
        await session.execute(
            select(Parameter, Notebook.username)
            .join(Notebook, Notebook.id == Parameter.notebook_id)
            .where(Parameter.id == parameter_id)
        )
    ).one_or_none()
    if found is None:
        raise NotFound(f"parameter {parameter_id} does not exist")
    parameter, owner = found
    if not principal.may_read(owner):
        raise NotFound(f"parameter {parameter_id} does not exist")
    if write:
        ensure_acting_for(principal, owner)
    return parameter


def _checked(fields: ParameterFields, prefix: str = "") -> list[FieldError]:
    return definition_errors(fields.param_type, fields.default_value, fields.validation_rules, prefix)


async def create_parameter(session: AsyncSession, data: ParameterCreate, principal: Principal) -> Parameter:
    errors = _checked(data)
    if errors:
        raise Invalid.fields(errors)
    notebook = await session.get(Notebook, data.notebook_id)
    if notebook is None or not principal.may_read(notebook.username):
        raise NotFound(
            f"notebook {data.notebook_id} does not exist",
            errors=[FieldError(field="notebook_id", rule="exists", message="no notebook has this id")],
        )
    ensure_acting_for(principal, notebook.username)
    parameter = Parameter(**data.model_dump())
    session.add(parameter)
    await _commit(session)
    return parameter


async def create_parameters(
    session: AsyncSession, notebook_id: int, items: Sequence[BulkParameterItem], principal: Principal
) -> Sequence[Parameter]:
    """All or nothing: one bad item and none is stored."""
    errors = [
        FieldError(
            field=f"[{index}].notebook_id",
            rule="matches_path",
            message=f"is {item.notebook_id}, but the path names notebook {notebook_id}",
        )
        for index, item in enumerate(items)
        if item.notebook_id not in (None, notebook_id)
    ]
    errors += [error for index, item in enumerate(items) for error in _checked(item, f"[{index}].")]
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
    await get_notebook(session, notebook_id, principal, write=True)
    parameters = [
        Parameter(notebook_id=notebook_id, **item.model_dump(exclude={"notebook_id"})) for item in items
    ]
    session.add_all(parameters)
    await _commit(session)
    return parameters


async def update_parameter(
    session: AsyncSession, parameter_id: int, data: ParameterUpdate, principal: Principal
) -> Parameter:
    changes = data.model_dump(exclude_unset=True)
    _refuse_nulls(changes)
    parameter = await get_parameter(session, parameter_id, principal, write=True)
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
    await _commit(session)
    await session.refresh(parameter)
    return parameter


async def delete_parameter(session: AsyncSession, parameter_id: int, principal: Principal) -> None:
    await get_parameter(session, parameter_id, principal, write=True)
    await session.execute(delete(Parameter).where(Parameter.id == parameter_id))
    await session.commit()
