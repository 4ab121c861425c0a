"""Fixtures for the identity tests: the local Keycloak (one per session, started through
scripts/keycloak.py) and an in-process app guarded by the library's dependencies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.keycloak import LocalKeycloak, guarded_client, keycloak

__all__ = ["keycloak"]


@pytest.fixture
async def api(keycloak: LocalKeycloak) -> AsyncIterator[httpx.AsyncClient]:
    """The guarded app, verifying the local realm's tokens with the default settings."""
    async with guarded_client(keycloak.auth_settings()) as client:
        yield client
