"""Notebook documents: reading and checking an input, and what the executor reads out of an output."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbp import RESULT_MIME_TYPE
from nbp_common.errors import Invalid, NotFound
from nbp_common.events import RecordedResult, recorded_result
from papermill.inspection import inspect_notebook


@dataclass(frozen=True)
class InputNotebook:
    sha256: str
    has_parameters_cell: bool
    kernel_name: str | None
    cells: int


def read_input(path: Path, field: str) -> InputNotebook:
    """Read and parse the input, or 404 (no such file) / 422 (not a notebook, with nbformat's reason)."""
    try:
        if not path.is_file():
            raise NotFound(f"{field}: no notebook at that path in the user's folder")
        raw = path.read_bytes()
    except OSError as exc:
        raise NotFound(f"{field}: the notebook cannot be read ({exc.strerror})") from exc
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several types: JSON, validation, version, decoding
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Invalid.field(field, "notebook", f"is not a Jupyter notebook: {reason[:500]}") from exc
    tags = (cell.get("metadata", {}).get("tags", []) for cell in nb.cells)
    kernelspec = nb.metadata.get("kernelspec") or {}
    return InputNotebook(
        sha256=hashlib.sha256(raw).hexdigest(),
        has_parameters_cell=any("parameters" in t for t in tags),
        kernel_name=kernelspec.get("name") if isinstance(kernelspec, dict) else None,
        cells=len(nb.cells),
    )


def inspect_parameters(path: Path) -> dict[str, dict[str, Any]]:
    """Papermill's reading of the ``parameters`` cell: name -> name, inferred_type_name (the annotation),
    default (its source text), help (the line's comment). Parsing only: nothing of the notebook runs."""
    try:
        found: dict[str, dict[str, Any]] = inspect_notebook(str(path))
    except Exception as exc:  # Papermill raises plain exceptions for what it cannot read (language, syntax)
        raise Invalid.field(
            "path", "parameters_cell", f"Papermill cannot read its parameters cell: {exc}"
        ) from exc
    return found


def recorded_results(nb: Any) -> list[RecordedResult]:
    """Values recorded with ``nbp.record``; a name recorded twice keeps its last value."""
    found: dict[str, RecordedResult] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            if output.get("output_type") not in ("display_data", "execute_result"):
                continue
            payload = (output.get("data") or {}).get(RESULT_MIME_TYPE)
            if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
                continue
            name = payload["name"][:255]
            if not name:
                continue
            found.pop(name, None)
            found[name] = recorded_result(name, payload.get("value"))
    return list(found.values())[:1000]
