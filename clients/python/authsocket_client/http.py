"""JSON over HTTP with httpx: one place that turns answers into typed errors."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from authsocket_client.errors import NetworkError, api_error

NO_BODY: Any = object()


def path_segment(value: str | int) -> str:
    """A stream name or id as one path segment (`room:lobby` keeps its colon)."""
    return quote(str(value), safe=":")


def retry_after(response: httpx.Response) -> float | None:
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class HttpSession:
    """An httpx client bound to one server; `call` answers parsed JSON or raises."""

    def __init__(
        self, base_url: str, *, timeout: float, client: httpx.AsyncClient | None = None
    ):
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            headers={"Accept": "application/json", "User-Agent": "authsocket-client"},
        )

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = NO_BODY,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The parsed JSON answer (None for 204); ApiError or NetworkError else."""
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if body is not NO_BODY:
            kwargs["json"] = body
        if params:
            kwargs["params"] = {k: v for k, v in params.items() if v is not None}
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            # The message names the host, never a header: no secret leaks here.
            raise NetworkError(f"{method} {path}: {type(exc).__name__}") from exc
        try:
            parsed = response.json() if response.content else None
        except (ValueError, RecursionError):
            parsed = None  # a proxy's HTML error page: the status says enough
        if response.is_success:
            return parsed
        raise api_error(response.status_code, parsed, retry_after(response))

    async def aclose(self) -> None:
        await self._client.aclose()
