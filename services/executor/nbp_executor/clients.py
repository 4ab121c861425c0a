"""The executor's HTTP calls to the other services: the registry (notebooks and parameter definitions)
and the history (lifecycle events, through the relay)."""

from __future__ import annotations

from typing import Any

import httpx
from nbp_common.errors import NotFound, Unavailable

from nbp_executor.settings import ExecutorSettings


def build_http_client(settings: ExecutorSettings, auth: httpx.Auth | None = None) -> httpx.AsyncClient:
    """The one place the executor's client is built: service-to-service credentials go in ``auth``."""
    return httpx.AsyncClient(
        auth=auth,
        timeout=httpx.Timeout(settings.http_timeout_seconds),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
    )


class Registry:
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        try:
            return await self.http.get(self.base_url + path, params=params)
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"the registry is not reachable ({type(exc).__name__}); try again shortly"
            ) from exc

    async def notebook(self, notebook_id: int) -> dict[str, Any]:
        """The notebook with its parameter definitions, or 404."""
        response = await self._get(f"/db/notebooks/{notebook_id}")
        if response.status_code == 404:
            raise NotFound(f"notebook {notebook_id} is not registered")
        if response.status_code != 200:
            raise Unavailable(f"the registry answered HTTP {response.status_code}; try again shortly")
        body: dict[str, Any] = response.json()
        return body

    async def notebook_at(self, username: str, file_path: str) -> dict[str, Any] | None:
        """The registered notebook of ``username`` at ``file_path`` (with its parameters), if any."""
        offset = 0
        while True:
            response = await self._get(
                "/db/notebooks", params={"username": username, "limit": 1000, "offset": offset}
            )
            if response.status_code != 200:
                raise Unavailable(f"the registry answered HTTP {response.status_code}; try again shortly")
            page: list[dict[str, Any]] = response.json()
            for notebook in page:
                if notebook.get("file_path") == file_path:
                    return await self.notebook(int(notebook["id"]))
            if len(page) < 1000:
                return None
            offset += 1000
