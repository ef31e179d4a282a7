"""JSON over HTTP with httpx: one place that turns answers into typed errors."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from authsocket_client.errors import AuthSocketError, NetworkError, api_error

NO_BODY: Any = object()
# The longest `Retry-After` believed, in seconds: a day, the longest period a
# server throttle has (`N/day`). Longer, or beyond any float (`1e999`), is
# taken as this, so that every wait computed from it stays finite.
MAX_RETRY_AFTER = 86400.0
# The largest answer body read, decoded (after gzip and the like), in bytes.
# A history page (200 messages of at most 64 KiB each, the server's default
# `AUTHSOCKET_MAX_MESSAGE_BYTES`) is about 13 MiB; beyond this the server,
# or a proxy, is not answering the API (a 250 KiB gzip of 256 MiB of spaces,
# read whole, took over half a GiB of memory).
MAX_ANSWER_BYTES = 16 * 2**20


def path_segment(value: str | int) -> str:
    """A stream name or id as one path segment (`room:lobby` keeps its colon)."""
    return quote(str(value), safe=":")


def retry_after(response: httpx.Response) -> float | None:
    """The wait `Retry-After` asks for: seconds, or an HTTP-date (RFC 9110
    §10.2.3, what some proxies send) counted from the answer's `Date`.

    Always None or finite, in [0, MAX_RETRY_AFTER]: NaN, a negative number
    or an unreadable value is None (no wait asked); `inf` or more than a day
    is a day. A date already past is 0.
    """
    value = response.headers.get("Retry-After", "").strip()
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value, response.headers.get("Date"))
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER)


def _seconds_until(http_date: str, server_date: str | None) -> float | None:
    """Seconds from the answer's `Date` (or now) to `http_date`; None if
    it is no date. Counted from the server's own clock when it says it, so
    a client clock that is off does not shorten or stretch the wait."""
    retry_at = _http_date(http_date)
    if retry_at is None:
        return None
    now = _http_date(server_date or "") or datetime.now(UTC)
    return max(0.0, (retry_at - now).total_seconds())


def _http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # A date without a zone (`-0000`) is UTC, as HTTP-dates always are.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class HttpSession:
    """An httpx client bound to one server; `call` answers parsed JSON or raises.

    `timeout` bounds each call as a whole. httpx's own timeout bounds each
    wait apart (connect, each read): a server that drips its answer a byte
    at a time would hold a call, and a socket's refresh, for ever.

    `max_answer_bytes` bounds each answer's body, decoded: it is read as it
    comes and no further, so an answer that inflates without end (a gzip
    bomb) costs that much memory, and one network read inflated (httpx
    decodes each whole), not all it holds.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        client: httpx.AsyncClient | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes
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
        """The parsed JSON answer (None for 204); ApiError or NetworkError else.

        A success whose body is over `max_answer_bytes` is the transient
        `bad_response`; an error answer that big is judged by its status,
        as an error page that is not JSON is.
        """
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if body is not NO_BODY:
            kwargs["json"] = body
        if params:
            kwargs["params"] = {k: v for k, v in params.items() if v is not None}
        try:
            async with asyncio.timeout(self.timeout):
                response, content = await self._answer(method, path, kwargs)
        except TimeoutError:
            raise NetworkError(
                f"{method} {path}: no answer in {self.timeout} s"
            ) from None
        except httpx.HTTPError as exc:
            # The message names the host, never a header: no secret leaks here.
            raise NetworkError(f"{method} {path}: {type(exc).__name__}") from exc
        if content is None and response.is_success:
            raise AuthSocketError(
                "bad_response",
                f"{method} {path}: an answer over {self.max_answer_bytes} bytes",
            )
        try:
            parsed = json.loads(content) if content else None
        except (ValueError, RecursionError):
            parsed = None  # a proxy's HTML error page: the status says enough
        if response.is_success:
            return parsed
        raise api_error(response.status_code, parsed, retry_after(response))

    async def _answer(
        self, method: str, path: str, kwargs: dict[str, Any]
    ) -> tuple[httpx.Response, bytes | None]:
        """The answer and its body, decoded; None for a body over
        `max_answer_bytes`, of which nothing more is kept or read: the
        connection is closed on the rest."""
        async with self._client.stream(method, path, **kwargs) as response:
            content = bytearray()
            async for chunk in response.aiter_bytes():
                if len(content) + len(chunk) > self.max_answer_bytes:
                    return response, None
                content += chunk
            return response, bytes(content)

    async def aclose(self) -> None:
        await self._client.aclose()
