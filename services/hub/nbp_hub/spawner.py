"""Each user's single-user server, confined like a notebook run (``nbp_common.sandbox``, decision D2).

All local servers run as the hub's own operating-system user, so the confinement is the sandbox's: the
user's folder ``<workspace>/<username>`` bound at ``/home/<username>`` (their home and working directory,
the folder the executor runs their notebooks from), the runtime read-only, a private ``/tmp``, its own
PID namespace (no other process, no other environment, visible), no other file of the workspace or the
checkout (no ``.nbp/``: no platform data, no hub or Keycloak secret), and an environment from the
sandbox's allow-list (JupyterHub's own variables, never ``NBP_*`` secrets). Whatever the user runs in a
terminal or a kernel runs in there too: both are children of the server.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner
from jupyterhub.utils import random_port
from nbp_common.sandbox import Limits, Prepared, Sandbox, SandboxKind, prepare
from traitlets import Integer, Unicode

# Importable packages a server needs that live outside the virtual environment (editable workspace
# members): the token helper, and what notebooks import.
SERVER_PACKAGES = ("nbp_hub", "nbp")


class SandboxSpawner(LocalProcessSpawner):  # type: ignore[misc]
    workspace = Unicode(config=True, help="The shared workspace: each user's home is <workspace>/<username>")
    memory_limit_bytes = Integer(4 << 30, config=True, help="Address-space limit of each process inside")
    process_limit = Integer(256, config=True, help="Processes and threads of one user's server, in all")

    _prepared: Prepared | None = None

    def user_folder(self) -> Path:
        return Path(str(self.workspace)) / str(self.user.name)

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env["USER"] = self.user.name
        env["HOME"] = f"/home/{self.user.name}"
        return env

    def get_args(self) -> list[str]:
        args: list[str] = super().get_args()
        # Jupyter's runtime and workspace state stay in the sandbox's private /tmp, not in the user's files.
        return [*args, "--LabApp.workspaces_dir=/tmp/jupyter-lab-workspaces"]

    def get_env(self) -> dict[str, str]:
        env: dict[str, str] = super().get_env()
        env["JUPYTER_RUNTIME_DIR"] = "/tmp/jupyter-runtime"
        return env

    async def start(self) -> tuple[str, int]:
        folder = self.user_folder()
        folder.mkdir(parents=True, exist_ok=True)
        # Spawner.port: a traitlet of an untyped base class.
        port: int = self.port or random_port()  # type: ignore[has-type]
        self.port = port
        sandbox = Sandbox(
            username=self.user.name,
            folder=folder,
            kind=SandboxKind.SERVER,  # its hub variables: the server's own API token, for its owner
            env=self.get_env(),
            limits=Limits(memory_bytes=self.memory_limit_bytes, processes=self.process_limit),
            packages=SERVER_PACKAGES,
            share_network=True,  # the proxy reaches the server on loopback; the server reaches the hub
        )
        prepared = prepare(sandbox, [*self.cmd, *self.get_args()])
        self.log.info("spawning %s's server in the sandbox of %s", self.user.name, folder)
        popen: dict[str, Any] = {
            "pass_fds": prepared.pass_fds,
            "preexec_fn": prepared.preexec_fn,
            "start_new_session": True,
            "env": {},
        }
        try:
            # As LocalProcessSpawner does: its poll() and stop() work on this Popen handle.
            self.proc = subprocess.Popen(prepared.argv, **popen)  # noqa: ASYNC220
        except BaseException:
            prepared.close()
            raise
        prepared.started()
        self._prepared = prepared
        self.pid = self.proc.pid
        return ("127.0.0.1", port)

    async def stop(self, now: bool = False) -> None:
        await super().stop(now=now)
        if self._prepared is not None:
            self._prepared.close()
            self._prepared = None
