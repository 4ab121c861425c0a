"""One notebook run with Papermill, in a kernel that was started before the run was claimed.

Papermill's own pieces do the work: ``parameterize_notebook`` injects the parameters (after the cell
tagged ``parameters``, or at the top when there is none), ``NotebookExecutionManager`` keeps its
per-cell metadata, ``PapermillNotebookClient`` (an nbclient ``NotebookClient``) executes the cells,
``raise_for_execution_errors`` marks a failed cell, and ``write_ipynb`` writes the output to a path or
any URL Papermill's I/O handlers know. What differs from ``papermill.execute_notebook`` is only that the
client is given an already started kernel (``km``/``kc``) and runs its cells on the worker's asyncio
loop, without the signal handlers nbclient installs in ``execute()``; the worker owns the kernel's end.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbp_common.events import ErrorDetails, ExecutionStatus, RecordedResult
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NotebookExecutionManager
from papermill.exceptions import PapermillExecutionError
from papermill.execute import prepare_notebook_metadata, raise_for_execution_errors, remove_error_markers
from papermill.iorw import load_notebook_node, write_ipynb
from papermill.parameterize import parameterize_notebook

from nbp_executor.intake.notebooks import recorded_results
from nbp_executor.runners.kernels import WarmKernel

INJECTED_TAG = "injected-parameters"
SOURCE_EXCERPT = 2000


@dataclass
class Progress:
    cells_total: int = 0
    cells_done: int = 0
    current_cell: int | None = None  # index in the input notebook
    last_cell: int | None = None  # the last cell started (where a run that stops, stopped)
    version: int = 0

    def bump(self) -> None:
        self.version += 1


@dataclass
class Outcome:
    status: ExecutionStatus  # an ending: completed, failed, cancelled or timed_out
    error_message: str | None = None
    error: ErrorDetails | None = None
    results: list[RecordedResult] = field(default_factory=list)
    input_sha256: str | None = None


def _input_index(nb: Any, index: int) -> int:
    """The index a cell of the executed notebook has in the input (without the injected cell)."""
    injected = sum(1 for cell in nb.cells[:index] if INJECTED_TAG in cell.get("metadata", {}).get("tags", []))
    return index - injected


def _prepare(
    input_path: Path, output_ref: str, parameters: dict[str, Any], kernel_name: str
) -> tuple[Any, str]:
    """The parameterized notebook, and the hash of the file as it was read for this run."""
    digest = hashlib.sha256(input_path.read_bytes()).hexdigest()
    nb = load_notebook_node(str(input_path))
    if parameters:
        nb = parameterize_notebook(nb, parameters, report_mode=False, kernel_name=kernel_name)
    nb = prepare_notebook_metadata(nb, str(input_path), output_ref, False)
    nb = remove_error_markers(nb)
    nb.metadata.papermill["parameters"] = parameters
    return nb, digest


class _WarmClient(PapermillNotebookClient):  # type: ignore[misc]
    """Papermill's client, run cell by cell on the caller's loop in a kernel it does not own."""

    async def run_cells(self, kernel: WarmKernel, on_cell: Callable[[int, bool], None]) -> None:
        self.reset_execution_trackers()
        info = await self.async_wait_for_reply(await _maybe_await(self.kc.kernel_info()))
        if info is not None and "language_info" in info["content"]:
            self.nb.metadata["language_info"] = info["content"]["language_info"]
        for index, cell in enumerate(self.nb.cells):
            try:
                self.nb_man.cell_start(cell, index)
                on_cell(index, False)
                await self.async_execute_cell(cell, index, execution_count=self.code_cells_executed + 1)
            except CellExecutionError as ex:
                self.nb_man.cell_exception(self.nb.cells[index], cell_index=index, exception=ex)
                break
            finally:
                self.nb_man.cell_complete(self.nb.cells[index], cell_index=index)
                on_cell(index, True)
        self.set_widgets_metadata()


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future) else value


class NotebookRun:
    """Prepare (parameterize) -> ``execute`` in a warm kernel -> ``finish`` (write the output)."""

    def __init__(
        self,
        input_path: Path,
        output_ref: str,
        parameters: dict[str, Any],
        kernel_name: str,
        cell_timeout: int | None,
    ) -> None:
        self.input_path = input_path
        self.output_ref = output_ref  # a local path or a URL
        self.parameters = parameters
        self.kernel_name = kernel_name
        self.cell_timeout = cell_timeout
        self.progress = Progress()
        self.nb: Any = None
        self.input_sha256: str | None = None  # of the file this run read (it may have changed since submit)
        self._client: _WarmClient | None = None
        self._nb_man: NotebookExecutionManager | None = None

    async def prepare(self) -> None:
        self.nb, self.input_sha256 = await asyncio.to_thread(
            _prepare, self.input_path, self.output_ref, self.parameters, self.kernel_name
        )
        self.progress.cells_total = sum(
            1 for cell in self.nb.cells if INJECTED_TAG not in cell.get("metadata", {}).get("tags", [])
        )
        # The output is written when the run ends (whatever the ending), not after every cell:
        # synchronous writes of a growing notebook would stall every other run on this loop.
        self._nb_man = NotebookExecutionManager(
            self.nb, output_path=None, log_output=False, progress_bar=False
        )
        self._client = _WarmClient(
            self._nb_man,
            timeout=self.cell_timeout,
            kernel_name=self.kernel_name,
            interrupt_on_timeout=False,
            shutdown_kernel="immediate",
        )
        self._nb_man.notebook_start()

    async def execute(self, kernel: WarmKernel) -> None:
        """Run every cell; raises DeadKernelError, CellTimeoutError; a cell error stops the run quietly."""
        assert self._client is not None
        assert self._nb_man is not None
        self._client.km = kernel.km
        self._client.kc = kernel.kc
        # A warm kernel was started before the run was known: move it to the notebook's folder.
        if self.input_path.parent.is_dir():
            folder = json.dumps(kernel.path_inside(self.input_path.parent))
            msg_id = await _maybe_await(
                kernel.kc.execute(f"import os as __o; __o.chdir({folder}); del __o", silent=True)
            )
            await self._client.async_wait_for_reply(msg_id)

        def on_cell(index: int, done: bool) -> None:
            nb_index = _input_index(self.nb, index)
            injected = INJECTED_TAG in self.nb.cells[index].get("metadata", {}).get("tags", [])
            if done:
                if not injected:
                    self.progress.cells_done += 1
                self.progress.current_cell = None
            elif not injected:
                self.progress.current_cell = nb_index
                self.progress.last_cell = nb_index
            self.progress.bump()

        await self._client.run_cells(kernel, on_cell)

    def _cell_error(self, exc: BaseException | None) -> ErrorDetails | None:
        """The failed cell of the executed notebook, as Papermill finds it (an error output)."""
        index = self.progress.last_cell
        source = None
        if index is not None:
            nb_index = next(
                (
                    i
                    for i in range(len(self.nb.cells))
                    if _input_index(self.nb, i) == index
                    and INJECTED_TAG not in self.nb.cells[i].get("metadata", {}).get("tags", [])
                ),
                None,
            )
            if nb_index is not None:
                source = str(self.nb.cells[nb_index].source)[:SOURCE_EXCERPT]
        if exc is None:
            return ErrorDetails(cell_index=index, cell_source=source)
        return ErrorDetails(
            cell_index=index,
            cell_source=source,
            ename=type(exc).__name__,
            evalue=str(exc).strip()[:100_000] or None,
        )

    async def finish(
        self, status: ExecutionStatus, exc: BaseException | None = None, message: str | None = None
    ) -> Outcome:
        """Close the notebook's metadata, write the output, and say how the run ended."""
        assert self._nb_man is not None
        self._nb_man.notebook_complete()
        outcome = Outcome(status=status, error_message=message, input_sha256=self.input_sha256)
        if status is not ExecutionStatus.COMPLETED and exc is not None:
            outcome.error = self._cell_error(exc)
        try:
            error = await asyncio.to_thread(_write_output, self.nb, self.output_ref)
        except Exception as write_exc:
            outcome.status = ExecutionStatus.FAILED if status == ExecutionStatus.COMPLETED else status
            outcome.error_message = (
                outcome.error_message + "; " if outcome.error_message else ""
            ) + f"the output notebook could not be written: {write_exc}"
            return outcome
        if error is not None:
            # A cell raised: the run failed there, whatever else happened.
            outcome.status = ExecutionStatus.FAILED if status == ExecutionStatus.COMPLETED else status
            outcome.error_message = outcome.error_message or f"{error.ename}: {error.evalue}"
            outcome.error = ErrorDetails(
                cell_index=_input_index(self.nb, error.cell_index),
                cell_source=str(error.source)[:SOURCE_EXCERPT],
                ename=str(error.ename)[:255],
                evalue=str(error.evalue)[:100_000],
                traceback="\n".join(str(line) for line in error.traceback)[:1_000_000],
            )
        outcome.results = recorded_results(self.nb)
        return outcome


def _write_output(nb: Any, output_ref: str) -> PapermillExecutionError | None:
    """Write the executed notebook; a cell error gets Papermill's banner and is returned."""
    if "://" not in output_ref:
        os.makedirs(os.path.dirname(output_ref) or ".", exist_ok=True)
    try:
        raise_for_execution_errors(nb, output_ref)  # writes the notebook itself when a cell failed
    except PapermillExecutionError as error:
        return error
    write_ipynb(nb, output_ref)
    return None


__all__ = ["CellTimeoutError", "DeadKernelError", "NotebookRun", "Outcome", "Progress"]
