"""Users' folders in the workspace: every path a request names is resolved here, symlinks included,
and refused unless it stays inside ``<workspace>/<username>/`` -- before any job row exists."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from nbp_common.errors import Forbidden, Invalid
from nbp_common.paths import USERNAME_PATTERN, relative_to_owner

# Schemes Papermill's I/O writes to; anything else with "://" is refused rather than guessed at.
OUTPUT_URL_SCHEMES = ("s3", "gs", "gcs", "abs", "adl", "http", "https", "hdfs", "file")
OUTPUTS_DIR = "outputs"


def user_folder(workspace: Path, username: str, field: str = "username") -> Path:
    if not USERNAME_PATTERN.fullmatch(username) or len(username) > 255:
        raise Invalid.field(field, "pattern", "must be letters, digits and . _ @ - (not starting with one)")
    return Path(os.path.realpath(workspace)) / username


@dataclass(frozen=True)
class ResolvedPath:
    relative: str  # relative to the user's folder, as recorded
    absolute: Path  # symlinks resolved


def resolve(workspace: Path, username: str, path: str, field: str) -> ResolvedPath:
    """``path`` (relative, or under ``/home/<username>/``: the path rule of :mod:`nbp_common.paths`)
    inside the user's folder; 422 when the rule refuses it, 403 for another user's home or a symbolic
    link that leads out."""
    folder = user_folder(workspace, username)
    relative = relative_to_owner(path, username, field)
    absolute = Path(os.path.realpath(folder / relative))
    if absolute != folder and not absolute.is_relative_to(folder):
        raise Forbidden(f"{field}: {path!r} leads outside {username}'s folder (through a symbolic link)")
    return ResolvedPath(relative=relative, absolute=absolute)


def is_url(value: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value) is not None


def check_output_url(value: str, field: str) -> str:
    scheme = value.split("://", 1)[0].lower()
    if scheme not in OUTPUT_URL_SCHEMES or scheme == "file":
        raise Invalid.field(
            field,
            "url_scheme",
            f"Papermill cannot write to {scheme}://; use {', '.join(OUTPUT_URL_SCHEMES[:-1])}",
        )
    return value


def default_output(stem: str, run_id: int, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{OUTPUTS_DIR}/{stem}-{stamp}-{run_id}.ipynb"


@dataclass(frozen=True)
class NotebookFile:
    path: str
    name: str
    size: int
    modified_at: datetime


def list_notebooks(workspace: Path, username: str) -> list[NotebookFile]:
    """The ``.ipynb`` files in the user's folder, except run outputs, checkpoints and hidden folders."""
    folder = user_folder(workspace, username)
    found: list[NotebookFile] = []
    if not folder.is_dir():
        return found
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and not (here == folder and d == OUTPUTS_DIR)
        )
        for name in sorted(files):
            if not name.endswith(".ipynb") or name.startswith("."):
                continue
            path = here / name
            real = Path(os.path.realpath(path))
            if not real.is_relative_to(folder):
                continue  # a symlink leading out of the folder is not the user's notebook
            try:
                stat = real.stat()
            except OSError:
                continue
            found.append(
                NotebookFile(
                    path=str(path.relative_to(folder).as_posix()),
                    name=name,
                    size=stat.st_size,
                    modified_at=datetime.fromtimestamp(stat.st_mtime, UTC),
                )
            )
    return found
