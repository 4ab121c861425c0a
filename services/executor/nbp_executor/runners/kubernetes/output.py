"""What the executor learns from a pod's output notebook in the owner's folder: Papermill saves it after
every cell (``metadata.papermill.status`` per cell), and marks the failed cell (an ``error`` output)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbp_common.events import ErrorDetails

from nbp_executor.runners.papermill_run import INJECTED_TAG, SOURCE_EXCERPT, Progress

ERROR_MARKER_TAG = "papermill-error-cell-tag"  # the banner Papermill puts above a failed run


def _tags(cell: Any) -> list[str]:
    tags: list[str] = cell.get("metadata", {}).get("tags", [])
    return tags


def _input_cells(nb: Any) -> list[Any]:
    """The cells of the input notebook, in order (without the injected parameters and the banner)."""
    return [cell for cell in nb.cells if not {INJECTED_TAG, ERROR_MARKER_TAG} & set(_tags(cell))]


def read_output(path: Path) -> Any | None:
    """The output notebook as Papermill last saved it; None while there is none (or half written)."""
    try:
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return None


def progress_of(nb: Any, progress: Progress) -> None:
    """Update ``progress`` from the cells' Papermill status."""
    done, current = 0, None
    cells = _input_cells(nb)
    for index, cell in enumerate(cells):
        status = cell.get("metadata", {}).get("papermill", {}).get("status")
        if status in ("completed", "failed"):
            done += 1
            progress.last_cell = index
        elif status == "running":
            current = index
            progress.last_cell = index
    if (done, current, len(cells)) != (progress.cells_done, progress.current_cell, progress.cells_total):
        progress.cells_done, progress.current_cell, progress.cells_total = done, current, len(cells)
        progress.bump()


def cell_error(nb: Any) -> ErrorDetails | None:
    """The failed cell (index in the input notebook, source excerpt, exception), if one failed."""
    for index, cell in enumerate(_input_cells(nb)):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return ErrorDetails(
                    cell_index=index,
                    cell_source=str(cell.source)[:SOURCE_EXCERPT],
                    ename=str(out.get("ename", ""))[:255] or None,
                    evalue=str(out.get("evalue", ""))[:100_000] or None,
                    traceback="\n".join(str(line) for line in out.get("traceback", []))[:1_000_000] or None,
                )
    return None
