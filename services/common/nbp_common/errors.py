"""One JSON error shape for every service, and the handlers that produce it.

Every error answer is ``{"detail": str, "code": str, "status": int, "errors": [...] | null,
"request_id": str | null}``; ``errors`` lists ``{"field", "rule", "message"}`` for invalid input.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from nbp_common.observability import current_request_id

logger = logging.getLogger("nbp.errors")


class FieldError(BaseModel):
    field: str
    rule: str
    message: str


class ErrorBody(BaseModel):
    detail: str
    code: str
    status: int
    errors: list[FieldError] | None = None
    request_id: str | None = None


class AppError(Exception):
    """An error a caller can act on; the handler turns it into the shared JSON shape."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class Invalid(AppError):
    status = 422
    code = "invalid"

    @classmethod
    def fields(cls, errors: list[FieldError]) -> Invalid:
        summary = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return cls(f"invalid input: {summary}", errors=errors)

    @classmethod
    def field(cls, field: str, rule: str, message: str) -> Invalid:
        return cls.fields([FieldError(field=field, rule=rule, message=message)])


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class Unavailable(AppError):
    status = 503
    code = "unavailable"


def error_response(
    status: int,
    code: str,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(detail=detail, code=code, status=status, errors=errors, request_id=current_request_id())
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
}


def _location(loc: tuple[Any, ...]) -> str:
    # ("body", "parameters", 0, "param_name") -> "parameters[0].param_name": the "body" prefix says
    # nothing; but ("body", 15), a JSON syntax error at character 15, is about the body as a whole.
    parts = list(loc)
    if len(parts) > 1 and parts[0] == "body" and (isinstance(parts[1], str) or len(parts) > 2):
        parts = parts[1:]
    elif len(parts) == 2 and parts[0] == "body":
        parts = ["body"]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def validation_errors(exc: RequestValidationError) -> list[FieldError]:
    return [
        FieldError(field=_location(tuple(err.get("loc", ()))), rule=err["type"], message=err["msg"])
        for err in exc.errors()
    ]


def _sqlstate(exc: DBAPIError) -> str | None:
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    return str(state) if state else None


# SQLSTATE classes that mean "the database is not there for us" rather than "your data is wrong":
# connection exceptions, insufficient resources, operator intervention, unknown database.
_UNREACHABLE_CLASSES = frozenset({"08", "53", "57", "3D"})


def _unavailable() -> JSONResponse:
    return error_response(503, "unavailable", "the database is not reachable; try again shortly")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.detail, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc)
        summary = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
        return error_response(422, "invalid", f"invalid input: {summary}", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(DBAPIError)
    async def _database(_: Request, exc: DBAPIError) -> JSONResponse:
        # The services validate before writing; these are the last line, so that a constraint the
        # database enforces still answers like the API would, never as a 500.
        state = _sqlstate(exc) or ""
        if state == "23505":
            return error_response(409, "conflict", "a record with the same unique values already exists")
        if state.startswith("22"):
            return error_response(422, "invalid", "a value is not acceptable to the database")
        if state.startswith("23"):
            return error_response(409, "conflict", "the change conflicts with stored data")
        unreachable = isinstance(exc, OperationalError | InterfaceError) or state[:2] in _UNREACHABLE_CLASSES
        if exc.connection_invalidated or unreachable:
            logger.warning("database unavailable: %s", exc)
            return _unavailable()
        logger.exception("database error", exc_info=exc)
        return error_response(500, "internal_error", "internal error")

    @app.exception_handler(ConnectionError)
    async def _connection(_: Request, exc: ConnectionError) -> JSONResponse:
        # asyncpg lets a refused or reset connection surface as the OS error it is.
        logger.warning("database unavailable: %s", exc)
        return _unavailable()

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "internal error")


def violated_constraint(exc: DBAPIError) -> str | None:
    """The name of the constraint a database error reports, if any (asyncpg keeps it on the cause)."""
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if name:
            return str(name)
    return None
