"""The scheduler's settings (prefix ``NBP_SCHEDULER_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SchedulerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NBP_SCHEDULER_", extra="ignore")

    # Whether this process fires schedules (every replica may: each fire time is claimed once).
    enabled: bool = True
    # A fire time this far in the past counts as missed (the executors were down); catch_up decides.
    misfire_grace_seconds: float = Field(default=60.0, gt=0)
    # Schedules claimed per transaction.
    batch: int = Field(default=250, ge=1, le=10_000)
    # This long before a fire time, the schedules due then are locked and their runs built, so that at
    # the fire time only the claim's inserts remain (a fire is then on time however many share it).
    lead_seconds: float = Field(default=5.0, ge=0, le=60)
    # Batches prepared ahead of one fire time, each its own transaction (and pooled connection).
    batches_ahead: int = Field(default=4, ge=1, le=64)
    # The longest sleep between passes; a schedule created or changed wakes every process at once.
    poll_seconds: float = Field(default=5.0, gt=0)
