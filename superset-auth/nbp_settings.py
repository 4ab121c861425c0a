"""How Superset's side of the platform reads its settings: the same locally and in the chart.

A secret comes from the file named by ``<NAME>_FILE`` (a mounted Kubernetes Secret) or from ``<NAME>``; a
database URL may leave its password to ``<NAME>_PASSWORD`` (or ``<NAME>_PASSWORD_FILE``), so that the
chart can name the host in the environment and keep the password in a Secret.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url


def setting(name: str, default: str | None = None) -> str:
    """``<name>_FILE``'s content, else ``<name>``, else ``default``; a missing required one stops start-up."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    value = os.environ.get(name, default)
    if value is None:
        raise RuntimeError(f"{name} (or {name}_FILE) must be set for Superset's platform configuration")
    return value


def database_url(name: str) -> str:
    """The URL ``<name>``, with the password of ``<name>_PASSWORD`` when one is given."""
    url = make_url(setting(name))
    password = setting(f"{name}_PASSWORD", "")
    if password:
        url = url.set(password=password)
    return url.render_as_string(hide_password=False)
