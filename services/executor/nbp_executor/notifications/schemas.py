"""The notifications API's models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from nbp_common.api import NoNul
from pydantic import BaseModel, ConfigDict, Field, model_validator

from nbp_executor.notifications.models import Channel, Trigger
from nbp_executor.schemas import NotebookId

Target = Annotated[str, Field(min_length=1, max_length=2048), NoNul]


class NotificationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schedule_id: int | None = Field(default=None, ge=1, le=2**63 - 1, description="A schedule's runs ...")
    notebook_id: NotebookId | None = Field(
        default=None, description="... or every run of a registered notebook."
    )
    channel: Channel
    url: Target | None = Field(default=None, description="webhook: an http(s) URL (never shown back).")
    email: Target | None = Field(default=None, description="email: the recipient's address.")
    triggers: list[Trigger] = Field(default=[Trigger.FAILURE], min_length=1, max_length=3)
    signing_secret: Annotated[str, Field(min_length=16, max_length=255), NoNul] | None = Field(
        default=None,
        description="webhook: the HMAC-SHA256 key of `X-NBP-Signature`; if absent, generated, shown once.",
    )

    @model_validator(mode="after")
    def _shape(self) -> NotificationCreate:
        if (self.schedule_id is None) == (self.notebook_id is None):
            raise ValueError("give exactly one of schedule_id or notebook_id")
        return self


class NotificationOut(BaseModel):
    id: int
    username: str
    schedule_id: int | None
    notebook_id: int | None
    channel: Channel
    target: str = Field(description="The e-mail address, or the webhook's scheme and host only.")
    triggers: list[Trigger]
    created_at: datetime


class NotificationCreated(NotificationOut):
    signing_secret: str | None = Field(description="The webhook's signing key: shown this once.")


class DeliveryOut(BaseModel):
    id: int
    job_id: int
    trigger: Trigger
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None
