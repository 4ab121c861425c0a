"""Retention's API models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_DAYS = 36_500


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retention_days: int = Field(ge=1, le=MAX_DAYS, description="Ended runs older than this are removed.")


class NotebookPolicy(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    notebook_id: int
    retention_days: int


class RetentionOut(BaseModel):
    default_days: int | None = Field(
        description="The platform's (NBP_HISTORY_RETENTION_DAYS); null: runs are kept for ever."
    )
    notebooks: list[NotebookPolicy] = Field(description="Notebooks with their own policy.")
