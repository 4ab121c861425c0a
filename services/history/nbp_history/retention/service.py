"""Retention: the policies, and the purge that applies them.

The purge removes ended runs older than their policy (a notebook's own, else the platform's) in
batches, each its own short transaction: the batch's runs (their results go with them, by foreign key),
their processed-event ids, and their totals and results added to the retired rollups, so that the hourly,
daily and result rollups, which are never touched, keep counting them. Rows are picked oldest first
along an index, so a batch costs the same at any table size; SKIP LOCKED lets intake and a concurrent
purge go on. Then each removed run's output notebook is deleted from its owner's folder, when the
workspace is mounted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

from nbp_common.errors import NotFound
from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from nbp_history.models import ENDED_CONDITION, SCHEMA, ProcessedEvent, RetentionPolicy
from nbp_history.rollups.maintain import (
    RESULTS_RETIRED,
    RETIRED,
    RUNS,
    add_result_rows,
    add_rows,
    ended_results_as_rows,
    ended_runs_as_rows,
)

PROCESSED = f"{SCHEMA}.{ProcessedEvent.__tablename__}"
POLICIES = f"{SCHEMA}.{RetentionPolicy.__tablename__}"


async def policies(session: AsyncSession) -> Sequence[RetentionPolicy]:
    return (await session.scalars(select(RetentionPolicy).order_by(RetentionPolicy.notebook_id))).all()


async def set_policy(session: AsyncSession, notebook_id: int, days: int) -> RetentionPolicy:
    statement = insert(RetentionPolicy).values(notebook_id=notebook_id, retention_days=days)
    policy: RetentionPolicy | None = await session.scalar(
        statement.on_conflict_do_update(
            index_elements=["notebook_id"], set_={"retention_days": days, "updated_at": text("now()")}
        ).returning(RetentionPolicy)
    )
    assert policy is not None
    return policy


async def remove_policy(session: AsyncSession, notebook_id: int) -> None:
    removed = await session.scalar(
        delete(RetentionPolicy)
        .where(RetentionPolicy.notebook_id == notebook_id)
        .returning(RetentionPolicy.notebook_id)
    )
    if removed is None:
        raise NotFound(f"notebook {notebook_id} has no retention policy of its own")


def _batch_sql(scope: str) -> str:
    return f"""
        WITH doomed AS (
            SELECT id FROM {RUNS} AS e
            WHERE {ENDED_CONDITION} AND queued_at < :cutoff AND {scope}
            ORDER BY queued_at LIMIT :batch FOR UPDATE SKIP LOCKED
        ), gone AS (
            DELETE FROM {RUNS} AS e USING doomed WHERE e.id = doomed.id
            RETURNING e.id, e.queued_at, e.notebook_id, e.username, e.status, e.notebook_name,
                      e.execution_time_seconds, e.output_path
        ), forgotten AS (
            DELETE FROM {PROCESSED} AS p USING gone WHERE p.execution_id = gone.id
        ), retired AS (
            {add_rows(RETIRED, ended_runs_as_rows("gone"))}
        ), retired_results AS (
            {add_result_rows(RESULTS_RETIRED, ended_results_as_rows("gone"))}
        )
        SELECT username, output_path FROM gone
    """


# The platform's policy covers the notebooks without one of their own (and runs of no notebook).
_DEFAULT_BATCH = _batch_sql(
    "(e.notebook_id IS NULL OR NOT EXISTS"
    f" (SELECT 1 FROM {POLICIES} AS p WHERE p.notebook_id = e.notebook_id))"
)
_NOTEBOOK_BATCH = _batch_sql("e.notebook_id = :notebook_id")


@dataclass
class PurgeReport:
    runs: int = 0
    outputs_deleted: int = 0
    outputs_left: int = 0

    def __str__(self) -> str:
        return (
            f"purged {self.runs} runs; output notebooks deleted: {self.outputs_deleted},"
            f" left (absent, not a file of the workspace, or the workspace not mounted): {self.outputs_left}"
        )


async def purge(
    session: AsyncSession, default_days: int | None, batch: int, workspace: Path, now: datetime | None = None
) -> PurgeReport:
    """Apply every policy until nothing is left to remove."""
    now = now or datetime.now(UTC)
    passes: list[tuple[str, dict[str, object]]] = []
    if default_days is not None:
        passes.append((_DEFAULT_BATCH, {"cutoff": now - timedelta(days=default_days)}))
    for policy in await policies(session):
        cutoff = now - timedelta(days=policy.retention_days)
        passes.append((_NOTEBOOK_BATCH, {"cutoff": cutoff, "notebook_id": policy.notebook_id}))
    await session.commit()
    report = PurgeReport()
    for statement, values in passes:
        while True:
            removed = (await session.execute(text(statement), {**values, "batch": batch})).all()
            await session.commit()
            report.runs += len(removed)
            for username, output_path in removed:
                if output_path and delete_output(workspace, username, output_path):
                    report.outputs_deleted += 1
                elif output_path:
                    report.outputs_left += 1
            if len(removed) < batch:
                break
    return report


def delete_output(workspace: Path, username: str, output_path: str) -> bool:
    """Delete ``<workspace>/<username>/<output_path>``, never anything outside the user's folder: each
    folder on the way is opened without following a symbolic link (a user may have made one point
    anywhere), and the last name is unlinked in the folder so opened (a link there is removed itself)."""
    relative = PurePosixPath(output_path)
    names = [username, *relative.parts]
    if relative.is_absolute() or "://" in output_path or any(n in ("", ".", "..") or "/" in n for n in names):
        return False
    try:
        folder = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        for name in names[:-1]:
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
            os.close(folder)
            folder = inner
        os.unlink(names[-1], dir_fd=folder)
    except OSError:
        return False
    finally:
        os.close(folder)
    return True
