"""notebook-platform's Python module. In a notebook: ``nbp.record("accuracy", 0.93)``. Elsewhere, the
SDK: ``nbp.Client`` / ``nbp.AsyncClient`` (:mod:`nbp.client`, with the extra ``[client]``), and the
``nbp`` command line (:mod:`nbp.cli`).

``import nbp`` loads nothing but this file: kernels import it for ``record`` and need no dependency; the
SDK's names are loaded from :mod:`nbp.client` on first use.

A recorded value is a display output with the MIME type :data:`RESULT_MIME_TYPE`; the executor reads
those from the output notebook and the history stores them (numbers as numbers, anything else as JSON).
No dependencies: outside a kernel (a plain script) ``record`` checks the value and does nothing.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbp.client import AsyncClient, Client, NbpError

__all__ = ["RESULT_MIME_TYPE", "AsyncClient", "Client", "NbpError", "record"]
_SDK_NAMES = frozenset({"AsyncClient", "Client", "NbpError"})


def __getattr__(name: str) -> Any:
    # PEP 562: the SDK (and httpx under it) is imported only when a program asks for it.
    if name in _SDK_NAMES:
        from nbp import client

        return getattr(client, name)
    raise AttributeError(f"module 'nbp' has no attribute {name!r}")


RESULT_MIME_TYPE = "application/vnd.nbp.result+json"


def record(name: str, value: Any) -> None:
    """Record ``value`` under ``name`` as a result of this run. ``value`` must be JSON-serialisable."""
    if not isinstance(name, str) or not name or len(name) > 255:
        raise ValueError("name must be a non-empty string of at most 255 characters")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("value must be a finite number (JSON has no NaN or infinity)")
    json.dumps(value, allow_nan=False)  # refuse what the record could not store, here, in the cell
    payload = {"name": name, "value": value}
    try:
        from IPython.display import display
    except ImportError:  # not in a kernel: nothing to record into
        return
    display(  # type: ignore[no-untyped-call]
        {RESULT_MIME_TYPE: payload, "text/plain": f"nbp.record({name!r}, {value!r})"},
        raw=True,
    )
