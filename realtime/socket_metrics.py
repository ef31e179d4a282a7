"""Handshake outcomes, close codes and open sockets, seen from the ASGI side.

An ASGI middleware between the JWT middleware and the router: it reads what
the consumer SENDS (accept, close before or after accept), so the consumer
itself holds no counting code. The refusal reason comes from `scope["auth"]`
(a bounded code, never the credential or its error text).

A handshake whose connection ended before the application accepted it
(daphne's `--websocket_connect_timeout` gave up on a slow handshake, or the
client left) is refused `abandoned`: daphne drops that accept and every
frame after it, so counting it `accepted`, and its socket open, counted a
client nobody served. The application learns of the end only from the
`websocket.disconnect` it reads after its connect handler returns, so
`HandshakeWatch` reads that one message ahead, while the handshake waits.
"""

import asyncio
from collections.abc import Awaitable

from django.db import InterfaceError, OperationalError

from core import metrics
from realtime.protocol import CloseCode

# `scope["auth"].error` starts with one of these (realtime.handshake).
_AUTH_REASONS = (
    ("no credential", "no_credential"),
    ("bad credential", "bad_credential"),
    ("token_expired", "token_expired"),
    ("invalid_token", "invalid_token"),
    ("session refused", "revoked"),
    ("database unavailable", "database_unavailable"),
)
# An authenticated user refused before accept, by the consumer's close code
# (realtime/base_consumer.py); any other close there is a path that refused
# the user: no route, or a consumer's `socket_allowed()`.
_CONSUMER_REASONS = {
    CloseCode.REVOKED: "revoked",  # revoked during the handshake
    CloseCode.INTERNAL_ERROR: "channel_layer",  # the user's group could not be joined
}


def refusal_reason(auth, code: int | None = None) -> str:
    """Why a handshake closed before accept, as a bounded label value.

    `code` is the close's: the consumer gives one when it refuses an
    authenticated user for a reason of its own (daphne answers 403 anyway).
    """
    if auth is None:
        return metrics.OTHER
    if auth.ok:
        return _CONSUMER_REASONS.get(code, "not_allowed")
    for prefix, reason in _AUTH_REASONS:
        if auth.error.startswith(prefix):
            return reason
    return metrics.OTHER


def _transport(auth) -> str | None:
    return None if auth is None or auth.transport is None else str(auth.transport)


class SocketMetricsMiddleware:
    """Counts each socket's handshake, its close code and its time open."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket" or not metrics.enabled():
            return await self.application(scope, receive, send)
        watch = HandshakeWatch(receive)
        counting = CountingSend(send, scope.get("auth"), watch)
        try:
            return await self.application(scope, watch, counting)
        except Exception as exc:
            counting.crashed(exc)
            raise
        finally:
            watch.stop()
            if counting.phase in ("accepting", "open", "closed"):
                metrics.socket_closed()


class HandshakeWatch:
    """One socket's `receive`, reading the message after `websocket.connect`
    ahead, so that an accept can tell whether the connection is gone already.

    Before accept the only message daphne can queue is `websocket.disconnect`;
    the message read ahead is handed to the application's next `receive()` as
    it is, so it sees every message once and in order. After that `receive`
    is daphne's own awaitable, returned as it is (no coroutine per frame).
    """

    __slots__ = ("receive", "ahead", "started")

    def __init__(self, receive) -> None:
        self.receive, self.ahead, self.started = receive, None, False

    def __call__(self) -> Awaitable[dict]:
        ahead = self.ahead
        if ahead is not None:
            self.ahead = None
            return ahead
        if self.started:
            return self.receive()
        self.started = True
        return self._first()

    async def _first(self) -> dict:
        message = await self.receive()  # websocket.connect
        self.ahead = asyncio.ensure_future(self.receive())
        return message

    def gone(self) -> bool:
        """Whether the connection ended before the application read that it did."""
        ahead = self.ahead
        return (
            ahead is not None
            and ahead.done()
            and not ahead.cancelled()
            and ahead.exception() is None
            and ahead.result().get("type") == "websocket.disconnect"
        )

    def stop(self) -> None:
        """The application ended: a message still awaited ahead is not."""
        if self.ahead is not None:
            self.ahead.cancel()
            self.ahead = None


class CountingSend:
    """One socket's `send`, counting what passes; a small object, held while it lives.

    `phase`: "handshake", then "accepting" (accepted, outcome decided by the
    next send: 4409 or not), "open", and "refused" or "closed".
    """

    __slots__ = ("send", "auth", "watch", "phase")

    def __init__(self, send, auth, watch: HandshakeWatch) -> None:
        self.send, self.auth, self.watch = send, auth, watch
        self.phase = "handshake"

    def __call__(self, message) -> Awaitable[None]:
        """Count, then hand back daphne's own awaitable.

        A plain function, not a coroutine: every frame a socket sends passes
        here, and an extra coroutine per frame was most of what counting cost
        an echo round trip (docs/metrics.md, "Cost").
        """
        if self.phase == "open":  # every frame after the first
            if message["type"] == "websocket.close":
                self._closing(message.get("code"))
            return self.send(message)
        kind = message["type"]
        if kind == "websocket.accept" and self.phase == "handshake":
            if self.watch.gone():  # nobody is left to accept
                metrics.handshake_refused("abandoned", _transport(self.auth))
                self.phase = "refused"
                return self.send(message)
            self.phase = "accepting"
            metrics.socket_opened()
        elif kind == "websocket.close":
            self._closing(message.get("code"))
        elif self.phase == "accepting":
            self.phase = "open"
            metrics.handshake_accepted(_transport(self.auth))
        return self.send(message)

    def crashed(self, exc: Exception) -> None:
        """The application raised: daphne answers HTTP 500 before accept and
        closes 1011 after it, messages the application never sends."""
        if self.phase == "handshake":
            unavailable = isinstance(exc, (OperationalError, InterfaceError))
            reason = "database_unavailable" if unavailable else "error"
            metrics.handshake_refused(reason, _transport(self.auth))
            self.phase = "refused"
        else:
            self._closing(CloseCode.INTERNAL_ERROR)

    def _closing(self, code) -> None:
        phase, auth = self.phase, self.auth
        if phase == "handshake":
            metrics.handshake_refused(refusal_reason(auth, code), _transport(auth))
            self.phase = "refused"
            return
        if phase == "accepting":
            if code == CloseCode.TOO_MANY_CONNECTIONS:
                metrics.handshake_refused("too_many_connections", _transport(auth))
            else:
                metrics.handshake_accepted(_transport(auth))
        if phase in ("accepting", "open"):
            metrics.close_code_sent(1000 if code is None else int(code))
            self.phase = "closed"
