"""The path rule, one for every service: a notebook path names a file in its owner's folder.

Paths are stored and passed on relative to the owner's folder (``reports/q3.ipynb``). The prototype sent
absolute paths under the user's home, which is where the folder is inside a run and in JupyterHub
(``/home/alice/reports/q3.ipynb``); those are accepted and normalised to the relative form. A path under
another user's home is refused with 403; any other absolute path, a ``..`` or an empty segment with 422.
These are lexical checks: where the file must exist, the executor also resolves symbolic links.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from pydantic_core import PydanticCustomError

from nbp_common.errors import FieldError, Forbidden, Invalid

HOME_ROOT = "/home"
USERNAME_PATTERN = re.compile(r"^\w[\w.@-]*$")
RELATIVE_RULE = (
    "must be relative to the user's folder (reports/q3.ipynb) or absolute under the user's home "
    f"({HOME_ROOT}/<username>/reports/q3.ipynb)"
)


class PathRuleError(ValueError):
    """A path that breaks the rule: ``rule`` names which part (``relative_path``, ``inside_user_folder``,
    ``own_home``), the message says what to send instead. A ``ValueError``, so pydantic reports it too."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


@dataclass(frozen=True)
class UserPath:
    """A path split by the rule: ``home_of`` is the user whose home an absolute path named (None for a
    relative path); ``relative`` is the path inside that folder."""

    home_of: str | None
    relative: str


def split_user_path(value: str) -> UserPath:
    """The path as (whose home, path inside it), or :class:`PathRuleError`. Lexical only."""
    if not value or "\x00" in value:
        raise PathRuleError("path", "must be a non-empty path")
    if "\\" in value or re.match(r"^[A-Za-z]:", value):
        raise PathRuleError("relative_path", f"{RELATIVE_RULE}, with forward slashes")
    home_of: str | None = None
    rest = value
    if value.startswith("/"):
        parts = value.split("/")
        # "", "home", "<username>", then at least one segment of the file's path.
        if len(parts) < 4 or parts[1] != HOME_ROOT.strip("/") or not USERNAME_PATTERN.fullmatch(parts[2]):
            raise PathRuleError("relative_path", RELATIVE_RULE)
        home_of = parts[2]
        rest = "/".join(parts[3:])
    segments = rest.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise PathRuleError(
            "inside_user_folder",
            "must not contain '.', '..' or empty segments: it stays in the user's folder",
        )
    return UserPath(home_of=home_of, relative=str(PurePosixPath(rest)))


def owner_of(value: str, default_owner: str | None, field: str) -> UserPath:
    """Split ``value`` (see :func:`split_user_path`), answering a refusal as the API's 422 naming
    ``field``; a relative path belongs to ``default_owner``."""
    try:
        split = split_user_path(value)
    except PathRuleError as exc:
        raise Invalid.field(field, exc.rule, exc.message) from exc
    return split if split.home_of is not None else UserPath(default_owner, split.relative)


def relative_to_owner(value: str, owner: str, field: str) -> str:
    """``value`` as a path relative to ``owner``'s folder; a path under another user's home is 403,
    whoever asks: a notebook of ``owner``'s is never a file of someone else's."""
    split = owner_of(value, owner, field)
    if split.home_of != owner:
        message = f"is under {HOME_ROOT}/{split.home_of}/, another user's home; it must be in {owner}'s"
        raise Forbidden(
            f"{field}: {message}", errors=[FieldError(field=field, rule="own_home", message=message)]
        )
    return split.relative


def valid_path(value: str) -> str:
    """For pydantic validators: ``value`` if it passes the lexical rule, else an error whose type is
    the rule broken (so the API's 422 names it)."""
    try:
        split_user_path(value)
    except PathRuleError as exc:
        raise PydanticCustomError(exc.rule, exc.message) from exc
    return value
