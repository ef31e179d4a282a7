"""The user side of the HTTP API: login, refresh with rotation, ticket, calls.

One `ApiClient` per session. It keeps its tokens in a `TokenStore` shared
with every socket it opens (and, with a file store, with other processes), so
whoever refreshes first makes the new pair everyone's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import weakref
from typing import Any

from authsocket_client.errors import AuthSocketError, CredentialsRejected, TokenRotated
from authsocket_client.http import (
    MAX_ANSWER_BYTES,
    NO_BODY,
    HttpSession,
    path_segment,
)
from authsocket_client.protocol import DEFAULT_URL
from authsocket_client.socket import AuthSocket
from authsocket_client.tokens import MemoryTokenStore, Tokens, TokenStore

# How long a refresh that lost the race (`token_rotated`) waits for the
# winner's tokens to show up in the store (another process writes them).
ROTATED_WAIT = 3.0
ROTATED_POLL = 0.05


class ApiClient:
    """A signed-in user's HTTP client; also the factory of its sockets.

    max_answer_bytes: the largest answer body read (16 MiB, decoded); a
    larger success is `bad_response`. Raise it for a server whose
    `AUTHSOCKET_MAX_MESSAGE_BYTES` is above 64 KiB: a page of its history
    may be bigger.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        store: TokenStore | None = None,
        timeout: float = 10.0,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ):
        self.url = url.rstrip("/")
        self.store: TokenStore = store if store is not None else MemoryTokenStore()
        self.http = HttpSession(
            self.url, timeout=timeout, max_answer_bytes=max_answer_bytes
        )
        self._refresh_lock = asyncio.Lock()
        # A refresh token answered `token_rotated`: another holder has its
        # successor. Sent again after the grace it would be `token_reused`,
        # which revokes the session for that holder too, so it never is.
        self._spent: str | None = None
        self.refreshes = 0  # refreshes this client made itself
        self.rotated = 0  # refreshes answered `token_rotated`, settled by the store
        # Closed with the client: they run on its HTTP session.
        self._sockets: weakref.WeakSet[AuthSocket] = weakref.WeakSet()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the sockets this client made, then its HTTP session."""
        for socket in list(self._sockets):
            await socket.close()
        await self.http.aclose()

    # --- tokens ---------------------------------------------------------------

    @property
    def tokens(self) -> Tokens | None:
        return self.store.load()

    def _current(self) -> Tokens:
        tokens = self.store.load()
        if tokens is None:
            raise CredentialsRejected("not_authenticated", "sign in first")
        return tokens

    async def login(self, username: str, password: str) -> Tokens:
        """Sign in with a password; the new session's tokens go to the store.

        An answer whose `user` is not a user object (with an integer `id`)
        is the transient `bad_response`, and nothing is saved: whoever
        shows whom they signed in as would fail on it after the save.
        """
        body = await self.http.call(
            "POST", "/api/auth/login", body={"username": username, "password": password}
        )
        tokens = Tokens.from_answer(body)
        if tokens.user is None and body.get("user") is not None:
            raise AuthSocketError("bad_response", "a login answer's `user` is no user")
        self.store.save(tokens)
        return tokens

    async def refresh(self) -> Tokens:
        """Rotate the refresh token; one refresh at a time per client.

        A caller that waited while another refreshed gets that result. A
        `token_rotated` answer means another holder of the store (a socket, a
        process) won the race: its newer tokens are taken from the store.
        """
        before = self._current()
        async with self._refresh_lock:
            tokens = self._current()
            if tokens.refresh != before.refresh:
                return tokens  # refreshed while we waited for the lock
            if not tokens.refresh:
                raise CredentialsRejected("not_authenticated", "no refresh token held")
            if tokens.refresh == self._spent:
                raise TokenRotated(
                    "token_rotated",
                    "this refresh token was rotated by another holder; sign in again",
                    status=401,
                )
            try:
                body = await self.http.call(
                    "POST", "/api/auth/refresh", body={"refresh": tokens.refresh}
                )
            except TokenRotated:
                self._spent = tokens.refresh
                newer = await self._newer_in_store(tokens.refresh)
                if newer is None:
                    raise
                self.rotated += 1
                return newer
            fresh = Tokens.from_answer(body)
            if fresh.user is None and tokens.user is not None:
                fresh = dataclasses.replace(fresh, user=tokens.user)
            self.store.save(fresh)
            self.refreshes += 1
            return fresh

    async def _newer_in_store(self, used: str) -> Tokens | None:
        """The winner's tokens once they are saved (polled: another process writes)."""
        deadline = time.monotonic() + ROTATED_WAIT
        while True:
            tokens = self.store.load()
            if tokens is not None and tokens.refresh != used:
                return tokens
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(ROTATED_POLL)

    async def fresh_tokens(
        self, *, min_remaining: float = 0.0, not_this: str | None = None
    ) -> Tokens:
        """Tokens whose access token lives `min_remaining` more seconds and is not `not_this`."""
        tokens = self._current()
        if tokens.remaining() >= min_remaining and tokens.access != not_this:
            return tokens
        return await self.refresh()

    # --- calls ----------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = NO_BODY,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """An authenticated call; an expired access token is refreshed once."""
        for attempt in range(2):
            tokens = self._current()
            try:
                return await self.http.call(
                    method,
                    path,
                    body=body,
                    params=params,
                    headers={"Authorization": f"Bearer {tokens.access}"},
                )
            except Exception as exc:
                if attempt or getattr(exc, "code", None) != "token_expired":
                    raise
                await self.fresh_tokens(not_this=tokens.access)
        raise AssertionError("unreachable")

    async def me(self) -> dict[str, Any]:
        return await self.request("GET", "/api/me")

    async def ticket(self) -> str:
        """A one-time ticket for the WebSocket URL (keeps the JWT out of URLs).

        Checked, not trusted: an answer without a non-empty string `ticket`
        (a proxy's page, a broken server) is the transient `bad_response`,
        which a socket retries after its backoff, as a bad refresh answer.
        """
        answer = await self.request("POST", "/api/auth/ticket")
        ticket = answer.get("ticket") if isinstance(answer, dict) else None
        if not isinstance(ticket, str) or not ticket:
            raise AuthSocketError("bad_response", "a ticket answer needs a `ticket`")
        return ticket

    async def logout(self) -> None:
        """Revoke this session on the server and forget its tokens.

        Tokens the server calls dead (revoked, session expired) are forgotten
        too, and that CredentialsRejected raised: nothing was left to revoke.
        """
        try:
            await self.request("POST", "/api/auth/logout")
        except CredentialsRejected:
            self.store.save(None)
            raise
        self.store.save(None)

    async def rooms(self) -> list[dict[str, Any]]:
        return await self.request("GET", "/api/rooms")

    async def room_post(self, slug: str, data: Any) -> dict[str, Any]:
        """Store a message in a room over HTTP; answers the stored message."""
        return await self.request(
            "POST", f"/api/rooms/{path_segment(slug)}/messages", body={"data": data}
        )

    async def room_messages(
        self, slug: str, *, after: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """A room's history, oldest first (without `after`: the latest `limit`)."""
        return await self.request(
            "GET",
            f"/api/rooms/{path_segment(slug)}/messages",
            params={"after": after, "limit": limit},
        )

    async def stream_messages(
        self, stream: str, *, after: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """History of any stream that keeps it, oldest first."""
        return await self.request(
            "GET",
            f"/api/streams/{path_segment(stream)}/messages",
            params={"after": after, "limit": limit},
        )

    async def stream_presence(self, stream: str) -> dict[str, Any]:
        """Who is subscribed to `stream` now, on every server process."""
        return await self.request(
            "GET", f"/api/streams/{path_segment(stream)}/presence"
        )

    def socket(self, **options: Any) -> AuthSocket:
        """A reconnecting socket of this session (see `AuthSocket` for options);
        `aclose()` closes it too."""
        socket = AuthSocket(self, **options)
        self._sockets.add(socket)
        return socket
