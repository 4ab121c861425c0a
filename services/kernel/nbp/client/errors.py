"""The API's errors as exceptions, each carrying the platform's error body."""

from __future__ import annotations

from typing import Any


class NbpError(Exception):
    """An error answer of the API. ``body`` is its JSON (``detail``, ``code``, ``status``, ``errors``
    naming each field and rule, ``request_id``), or ``None`` when there was no answer at all."""

    def __init__(self, status: int, body: dict[str, Any] | None, fallback: str = "") -> None:
        self.status = status
        self.body = body
        self.detail: str = str((body or {}).get("detail") or fallback or f"HTTP {status}")
        self.code: str = str((body or {}).get("code") or "error")
        self.errors: list[dict[str, Any]] = list((body or {}).get("errors") or [])
        self.request_id: str | None = (body or {}).get("request_id")
        super().__init__(f"{status} {self.code}: {self.detail}")


class BadRequest(NbpError):
    pass


class Unauthorized(NbpError):
    """401: no valid token; sign in again (``nbp login``)."""


class Forbidden(NbpError):
    pass


class NotFound(NbpError):
    pass


class Conflict(NbpError):
    pass


class Invalid(NbpError):
    """422: ``errors`` names each field and the rule it broke."""


class Unavailable(NbpError):
    """503 (after the client's retries), or the server could not be reached at all (``status`` 0)."""


_BY_STATUS: dict[int, type[NbpError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
    503: Unavailable,
}


def error_for(status: int, body: dict[str, Any] | None, fallback: str = "") -> NbpError:
    return _BY_STATUS.get(status, NbpError)(status, body, fallback)


class SignInError(Exception):
    """Signing in did not work (the device code expired, access was denied, Keycloak refused)."""
