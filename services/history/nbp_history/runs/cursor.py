"""Keyset pagination: a page starts after the last record of the previous one, so a page a million
records deep costs what the first one does (an offset makes PostgreSQL walk past every skipped row).

Lists are ordered newest first by ``(queued_at, id)``; a cursor is that pair of the last record sent,
opaque to clients (URL-safe base64)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from nbp_common.api import MAX_ID
from nbp_common.errors import Invalid


@dataclass(frozen=True)
class Cursor:
    queued_at: datetime
    id: int

    def encode(self) -> str:
        raw = f"{self.queued_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            queued_at, _, id_ = raw.partition("|")
            cursor = cls(datetime.fromisoformat(queued_at), int(id_))
            valid = cursor.queued_at.tzinfo is not None and 1 <= cursor.id <= MAX_ID
        except (binascii.Error, UnicodeDecodeError, ValueError):
            valid = False
        if not valid:
            raise Invalid.field("query.cursor", "cursor", "is not a cursor this API gave (X-Next-Cursor)")
        return cursor
