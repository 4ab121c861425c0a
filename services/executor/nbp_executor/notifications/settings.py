"""Delivery settings: SMTP (prefix ``NBP_SMTP_``) and the outbox's pace (``NBP_NOTIFY_``)."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _networks(value: object) -> object:
    """A comma-separated list from the environment ("127.0.0.1/32,10.1.0.0/16"), or a list."""
    if isinstance(value, str):
        return [ipaddress.ip_network(part.strip()) for part in value.split(",") if part.strip()]
    return value


class SmtpSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NBP_SMTP_", extra="ignore")

    host: str | None = None  # unset: e-mail rules are refused (422), none can be delivered
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = "notebook-platform@localhost"
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    timeout_seconds: float = Field(default=10.0, gt=0)


class NotifySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NBP_NOTIFY_", extra="ignore")

    # Where a message links to (the platform's public URL); unset: no link.
    public_url: str | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)
    batch: int = Field(default=50, ge=1, le=1000)
    # Retry with exponential backoff from this, up to the maximum; deliveries are never dropped.
    min_backoff_seconds: float = Field(default=1.0, gt=0)
    max_backoff_seconds: float = Field(default=300.0, gt=0)
    poll_seconds: float = Field(default=5.0, gt=0)
    # Networks a webhook may reach besides public addresses (none by default: no loopback, private,
    # link-local, shared, multicast or reserved address), e.g. an in-cluster chat relay's.
    webhook_allowed_networks: Annotated[
        tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], NoDecode, BeforeValidator(_networks)
    ] = ()
