"""One OpenAPI document for the whole platform: this service's, merged with its peers'."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

logger = logging.getLogger("nbp.openapi")


def merge_openapi(base: dict[str, Any], others: list[dict[str, Any]]) -> dict[str, Any]:
    """Paths, component schemas and tags of ``others`` added to ``base``; ``base`` wins on a clash
    (the shared error and validation schemas are the same everywhere)."""
    merged = {**base, "paths": dict(base.get("paths", {}))}
    components = merged.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    tags = {tag["name"]: tag for tag in merged.get("tags", [])}
    for doc in others:
        for path, item in doc.get("paths", {}).items():
            merged["paths"].setdefault(path, item)
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            schemas.setdefault(name, schema)
        for kind, entries in doc.get("components", {}).items():
            if kind != "schemas":
                components.setdefault(kind, {}).update(entries)
        for tag in doc.get("tags", []):
            tags.setdefault(tag["name"], tag)
    if tags:
        merged["tags"] = list(tags.values())
    return merged


class PeerDocs:
    """Fetches the peers' documents when asked for, and keeps them a minute: a peer that is down
    leaves its paths out of the docs rather than failing them."""

    ttl_seconds = 60.0

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self._docs: list[dict[str, Any]] = []
        self._fetched_at = float("-inf")

    async def get(self) -> list[dict[str, Any]]:
        if time.monotonic() - self._fetched_at < self.ttl_seconds:
            return self._docs
        docs = []
        async with httpx.AsyncClient(timeout=5) as client:
            for url in self.urls:
                try:
                    response = await client.get(url)
                    response.raise_for_status()
                    docs.append(response.json())
                except (httpx.HTTPError, ValueError) as exc:
                    logger.warning("peer OpenAPI document unavailable: %s (%s)", url, exc)
                    return docs  # not cached: try again on the next request
        self._docs, self._fetched_at = docs, time.monotonic()
        return docs
