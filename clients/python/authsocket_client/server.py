"""The server API (`/api/server/`), for other backends, with a service key.

Every call is safe to retry: `publish` sends an `Idempotency-Key` made once
per call and reused on its retries, so a publish whose answer was lost is
not stored twice. Transient failures (network, 429, 5xx) are retried with
backoff; anything else raises at once. A `Retry-After` longer than
`max_retry_wait` is not slept through: the error is raised with it.

`revoke_user` is safe to retry too (a revoked session stays revoked), but
its count is the answering attempt's: after an answer lost on the way back,
the retry finds the sessions revoked already and answers fewer, often 0.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from authsocket_client.backoff import Backoff
from authsocket_client.errors import AuthSocketError
from authsocket_client.http import (
    MAX_ANSWER_BYTES,
    NO_BODY,
    HttpSession,
    path_segment,
)
from authsocket_client.protocol import DEFAULT_URL, is_id


def new_idempotency_key() -> str:
    """A fresh key: 32 URL-safe characters (the server takes up to 64)."""
    return secrets.token_urlsafe(24)


class ServerClient:
    """`Authorization: ApiKey <key>` calls; never a user's JWT.

    retries: transient failures retried per call, with backoff.
    max_retry_wait: the longest `Retry-After` (seconds) slept before a
    retry. A server or proxy asking for longer (an hour, a day) gets its
    ApiError raised at once, `retry_after` set, rather than a caller hung
    for that long: whether to wait that much is the caller's decision.
    max_answer_bytes: the largest answer body read, as for `ApiClient`.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str = "",
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff_base: float = 0.25,
        backoff_cap: float = 4.0,
        max_retry_wait: float = 30.0,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ):
        if not api_key:
            raise ValueError("a service key is required (manage.py service_key create)")
        self.url = url.rstrip("/")
        self.http = HttpSession(
            self.url, timeout=timeout, max_answer_bytes=max_answer_bytes
        )
        self.retries = retries
        self._backoff = (backoff_base, backoff_cap)
        self.max_retry_wait = max_retry_wait
        self._auth = {"Authorization": f"ApiKey {api_key}"}

    async def __aenter__(self) -> ServerClient:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = NO_BODY,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One call, retried on transient failures with the SAME headers."""
        backoff = Backoff(*self._backoff)
        for attempt in range(self.retries + 1):
            try:
                return await self.http.call(
                    method,
                    f"/api/server/{path}",
                    body=body,
                    params=params,
                    headers={**self._auth, **(headers or {})},
                )
            except AuthSocketError as exc:
                if not exc.transient or attempt == self.retries:
                    raise
                asked = exc.retry_after or 0.0
                if asked > self.max_retry_wait:
                    raise  # carries `retry_after`: the caller decides to wait
                await asyncio.sleep(backoff.next_delay(asked))
        raise AssertionError("unreachable")

    async def publish(
        self, stream: str, data: Any, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Store and deliver a message; answers it (the first one, on a replay)."""
        key = idempotency_key or new_idempotency_key()
        return await self._call(
            "POST",
            "publish",
            body={"stream": stream, "data": data},
            headers={"Idempotency-Key": key},
        )

    async def history(
        self, stream: str, *, after: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        return await self._call(
            "GET",
            f"streams/{path_segment(stream)}/messages",
            params={"after": after, "limit": limit},
        )

    async def presence(self, stream: str) -> dict[str, Any]:
        return await self._call("GET", f"streams/{path_segment(stream)}/presence")

    async def revoke_user(self, user_id: int) -> int:
        """Revoke every session of the user; answers how many this call revoked.

        Retried like every call: after a lost answer the retry finds them
        revoked already, so the count may be lower (0) though all are revoked.
        An answer without an integer `revoked` (a proxy's page) is the
        transient `bad_response`: the sessions may or may not be revoked.
        """
        answer = await self._call("POST", f"users/{path_segment(user_id)}/revoke")
        revoked = answer.get("revoked") if isinstance(answer, dict) else None
        if not is_id(revoked) or revoked < 0:
            raise AuthSocketError(
                "bad_response", "a revoke answer needs an integer `revoked`"
            )
        return revoked

    async def connections(self, user_id: int) -> dict[str, Any]:
        """`{"connections": n, "sessions": [{"id", "connections"}]}`, all processes."""
        return await self._call("GET", f"users/{path_segment(user_id)}/connections")
