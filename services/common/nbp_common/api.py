"""API building blocks every service uses the same way: ids, pagination, list answers, text fields."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Response
from pydantic import AfterValidator

from nbp_common.errors import Invalid

MAX_ID = 2**63 - 1
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_OFFSET = 2**31 - 1

IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="The record's id, a positive integer.")]


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000; refusing it here names the field instead of failing in the driver.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


# What a PostgreSQL text column accepts: ``Annotated[str, Field(max_length=...), NoNul]`` (the length
# constraint before the validator, so that pydantic reports it as a string's).
NoNul = AfterValidator(_no_nul)


def _json_no_nul(value: Any) -> Any:
    # JSONB refuses "\u0000" anywhere in a document, keys included.
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _json_no_nul(item)
    elif isinstance(value, list):
        for item in value:
            _json_no_nul(item)
    return value


def json_storable(value: Any) -> Any:
    return _json_no_nul(value)


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


# Dependencies are ``async def`` even when they do no I/O: FastAPI runs a plain ``def`` one in a worker
# thread, a hop that costs more than the function.
async def page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"At most {MAX_LIMIT} items.")
    ] = DEFAULT_LIMIT,
    offset: Annotated[int | None, Query(ge=0, le=MAX_OFFSET, description="Items to pass over.")] = None,
    skip: Annotated[
        int | None, Query(ge=0, le=MAX_OFFSET, description="The prototype's name of `offset`.")
    ] = None,
) -> Page:
    if offset is not None and skip is not None and offset != skip:
        raise Invalid.field(
            "query.skip", "same_as_offset", "is the prototype's name of offset; send one, or both equal"
        )
    return Page(limit=limit, offset=offset if offset is not None else skip or 0)


PageDep = Annotated[Page, Depends(page_params)]


def with_total(response: Response, total: int, items: Sequence[Any]) -> Sequence[Any]:
    """List endpoints answer a bare JSON array (as the seed did) and the total in ``X-Total-Count``."""
    response.headers["X-Total-Count"] = str(total)
    return items
