"""Notification targets: what a webhook URL and an e-mail address must be, and what of a URL is shown."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from nbp_common.errors import Invalid

from nbp_executor.notifications.settings import SmtpSettings

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def redact(url: str) -> str:
    """What may be shown of a webhook URL: its scheme and host (the path and query may be a secret)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…"


def check_webhook(url: str | None) -> str:
    if url is None:
        raise Invalid.field("url", "required", "a webhook needs its url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid.field("url", "http_url", "must be an http:// or https:// URL with a host")
    return url


def check_email(address: str | None) -> str:
    if address is None:
        raise Invalid.field("email", "required", "an e-mail notification needs its address")
    if not EMAIL.match(address):
        raise Invalid.field("email", "email", "must be an e-mail address (name@domain)")
    if SmtpSettings().host is None:
        raise Invalid.field("channel", "smtp", "e-mail is not configured on this platform (NBP_SMTP_HOST)")
    return address
