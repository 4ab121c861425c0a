"""The embedded PostgreSQL of ``make dev`` and ``make api``: pgserver's binaries, data kept across restarts.

One owner at a time: the process that starts it holds ``<data dir>.lock`` (an ``flock``, released by the
kernel however that process ends). A postmaster found running on the data folder while that lock is free
was left by an owner that died without stopping it (SIGKILL, a crash, an older ``make dev``): it is
stopped before a fresh one starts, so that the new owner's stop really stops PostgreSQL. pgserver's own
shared-handle bookkeeping (``.handle_pids.json``) is not used for stopping: a dead pid left in it would
keep ``stop`` from ever stopping the server.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import IO, Any

import psutil
from sqlalchemy.engine import URL, make_url

logger = logging.getLogger("nbp.postgres")


class DataDirInUse(RuntimeError):
    """Another live process owns the embedded PostgreSQL of this data folder."""


def postmasters(data_dir: Path) -> list[psutil.Process]:
    """PostgreSQL server processes running on ``data_dir`` (the postmaster and its backends)."""
    target = str(data_dir.resolve())
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        # An exited server whose parent has not reaped it yet (a zombie) is gone.
        if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.info["name"] != "postgres":
            continue
        if target in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def wait_gone(data_dir: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while postmasters(data_dir):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


class EmbeddedPostgres:
    """pgserver's PostgreSQL on ``data_dir`` (unix socket only), owned by this process until :meth:`stop`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._lock: IO[str] | None = self._acquire_lock()
        try:
            self._reap_stale()
            import pgserver

            self._server: Any = pgserver.get_server(self.data_dir, cleanup_mode=None)
        except BaseException:
            self._release_lock()
            raise
        self.url: URL = make_url(self._server.get_uri())

    def _acquire_lock(self) -> IO[str]:
        lock = self.data_dir.with_name(self.data_dir.name + ".lock").open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "another process"
            lock.close()
            raise DataDirInUse(
                f"the embedded PostgreSQL in {self.data_dir} is in use by pid {owner} "
                "(another `make dev` or `make api` of this checkout?); stop that one first"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        return lock

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the descriptor releases the flock
            self._lock = None

    def _reap_stale(self) -> None:
        stale = postmasters(self.data_dir)
        if stale:
            logger.warning(
                "a PostgreSQL left running on %s by an earlier run (pids %s): stopping it",
                self.data_dir,
                ", ".join(str(p.pid) for p in stale),
            )
            self._pg_ctl_stop()
            self._kill_leftovers()
        # pgserver would count a dead pid in its handle list as a live user of the server.
        (self.data_dir / ".handle_pids.json").unlink(missing_ok=True)

    def _pg_ctl_stop(self) -> None:
        from pgserver._commands import pg_ctl

        # As root pgserver runs the server as its own system user; pg_ctl must run as that user too.
        user = "pgserver" if os.geteuid() == 0 else None
        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=user, timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            logger.warning("pg_ctl stop on %s: %s", self.data_dir, exc)

    def _kill_leftovers(self) -> None:
        if not wait_gone(self.data_dir, 10):
            for proc in postmasters(self.data_dir):
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.kill()
            wait_gone(self.data_dir, 5)

    def ensure_database(self, name: str) -> None:
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")
        if "(1 row)" not in exists:
            self._server.psql(f'CREATE DATABASE "{name}";')

    def database_url(self, name: str, driver: str = "postgresql+asyncpg") -> URL:
        self.ensure_database(name)
        return self.url.set(drivername=driver, database=name)

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended) and give up ownership."""
        if self._lock is None:
            return
        try:
            if postmasters(self.data_dir):
                logger.info("stopping the embedded PostgreSQL")
                self._pg_ctl_stop()
                self._kill_leftovers()
            (self.data_dir / ".handle_pids.json").unlink(missing_ok=True)
        finally:
            self._release_lock()
