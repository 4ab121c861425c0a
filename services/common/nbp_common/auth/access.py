"""Who may do what, the same way in every service: roles from the token, ownership from the data.

Admins (and services' own clients) see and manage everything; users their own; viewers read their own
and change nothing. A username in a path or body that is not the caller's is refused (403); a record of
someone else's that is asked for by id is answered as if it did not exist (404), so ids reveal nothing;
lists are narrowed to the caller's own records, never refused.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from nbp_common.auth.dependencies import require_principal
from nbp_common.auth.principal import Principal
from nbp_common.errors import FieldError, Forbidden

Reader = Annotated[Principal, Depends(require_principal("read"))]
Writer = Annotated[Principal, Depends(require_principal("write"))]
Administrator = Annotated[Principal, Depends(require_principal("admin"))]


def ensure_acting_for(principal: Principal, username: str, field: str = "username") -> None:
    """Refuse (403) a request made in another user's name, unless the caller is an admin."""
    if username != principal.username and not principal.is_admin:
        message = (
            f"is {username!r}, but you are signed in as {principal.username!r}; only admins act for others"
        )
        raise Forbidden(
            f"{field}: {message}", errors=[FieldError(field=field, rule="owner", message=message)]
        )


def owner_scope(principal: Principal) -> str | None:
    """The owner a caller's reads are narrowed to: their own username, or None (everyone's) for admins."""
    return None if principal.is_admin else principal.username
