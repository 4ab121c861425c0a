"""The history's own settings (prefix ``NBP_``), beside the shared ones in ``nbp_common.settings``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class HistorySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NBP_", extra="ignore")

    # Ended runs older than this many days (by queued_at) are removed by `nbp-history purge-expired`,
    # unless their notebook has its own policy; unset: kept for ever.
    history_retention_days: int | None = Field(default=None, ge=1, le=36_500)
    # Runs removed per transaction: each batch holds its row locks for milliseconds.
    history_retention_batch: int = Field(default=1000, ge=1, le=100_000)
    # Users' folders (<workspace>/<username>/), where the removed runs' output notebooks are; when the
    # purge does not see it (the history's pod mounts no workspace), outputs are left and counted.
    workspace: Path = Path(".nbp/workspace")
