"""Handshake outcomes, close codes and open sockets, seen from the ASGI side.

An ASGI middleware between the JWT middleware and the router: it reads what
the consumer SENDS (accept, close before or after accept), so the consumer
itself holds no counting code. The refusal reason comes from `scope["auth"]`
(a bounded code, never the credential or its error text).
"""

from authsocket import metrics
from realtime.protocol import CloseCode
from realtime.session_guard import guard

# `scope["auth"].error` starts with one of these (realtime.handshake).
_AUTH_REASONS = (
    ("no credential", "no_credential"),
    ("bad credential", "bad_credential"),
    ("token_expired", "token_expired"),
    ("invalid_token", "invalid_token"),
    ("session refused", "revoked"),
    ("database unavailable", "database_unavailable"),
)


def refusal_reason(auth) -> str:
    """Why a handshake closed before accept, as a bounded label value."""
    if auth is None:
        return metrics.OTHER
    if auth.ok:
        # Authenticated, yet closed before accept: the session was revoked
        # during the handshake, or the channel layer refused the user's group.
        return "revoked" if guard.is_revoked(auth.sid) else "channel_layer"
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
        # "accepting": accepted, outcome decided by the next send (4409 or not).
        state = {"phase": "handshake"}
        auth = scope.get("auth")

        async def counting_send(message):
            kind = message["type"]
            if kind == "websocket.accept" and state["phase"] == "handshake":
                state["phase"] = "accepting"
                metrics.socket_opened()
            elif kind == "websocket.close":
                _closing(state, auth, message.get("code"))
            elif state["phase"] == "accepting":
                state["phase"] = "open"
                metrics.handshake_accepted(_transport(auth))
            await send(message)

        try:
            return await self.application(scope, receive, counting_send)
        finally:
            if state["phase"] in ("accepting", "open", "closed"):
                metrics.socket_closed()


def _closing(state: dict, auth, code) -> None:
    phase = state["phase"]
    if phase == "handshake":
        metrics.handshake_refused(refusal_reason(auth), _transport(auth))
        state["phase"] = "refused"
        return
    if phase == "accepting":
        if code == CloseCode.TOO_MANY_CONNECTIONS:
            metrics.handshake_refused("too_many_connections", _transport(auth))
        else:
            metrics.handshake_accepted(_transport(auth))
    if phase in ("accepting", "open"):
        metrics.close_code_sent(1000 if code is None else int(code))
        state["phase"] = "closed"
