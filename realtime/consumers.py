"""The one WebSocket endpoint, `/ws/` (docs/protocol.md §4).

Thin on purpose: authentication happened in the middleware, frame rules live in
small handlers picked from a dispatch table, streams and permissions in their
own modules. Channel-layer events are handled by methods named after their
type (`sessions.revoked` → `sessions_revoked`).
"""

import json
import logging
import re

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError

from accounts.tokens import InvalidToken, decode_access
from authsocket import strict_json
from realtime.connections import registry
from realtime.expiry import ExpiryTimer
from realtime.frame_fields import frame_problem
from realtime.groups import user_group
from realtime.protocol import (
    PROTOCOL_VERSION,
    SUBPROTOCOL,
    ClientFrame,
    CloseCode,
    ErrorCode,
    ServerFrame,
)
from realtime.ratelimit import FrameLimiter
from realtime.session_guard import SessionRefused, guard
from realtime.stream_frames import StreamSubscriptions

logger = logging.getLogger(__name__)


def dumps(frame: dict) -> str:
    # allow_nan=False: a server frame is strict JSON or is not sent at all.
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class FrameError(Exception):
    """A frame the client got wrong: answered with an error, the socket stays."""

    def __init__(self, code: ErrorCode, detail: str):
        super().__init__(detail)
        self.code, self.detail = code, detail


class StreamConsumer(AsyncWebsocketConsumer):
    """One authenticated socket: welcome, ping, auth renewal, streams."""

    async def dispatch(self, message: dict) -> None:
        """Route an ASGI or channel-layer message to its handler.

        Channels' version first runs `close_old_connections` on the shared
        sync thread for EVERY message: a thread hop per frame and per fan-out
        delivery. Our handlers never touch the ORM on the event loop; they go
        through `database_sync_to_async` (which does that clean-up itself) or
        the session guard's threads, so the hop is skipped.

        A handler's exception still releases this socket's place and groups:
        Channels would end the consumer without `disconnect()`, and the
        registry would count a dead socket against the user's limit for the
        life of the process. Re-raised: daphne logs it and closes 1011.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        try:
            await handler(message)
        except StopConsumer:
            raise
        except Exception:
            if getattr(self, "registered", False):
                await self.disconnect(CloseCode.INTERNAL_ERROR)
            raise

    # --- lifecycle ---------------------------------------------------------

    async def connect(self) -> None:
        user, auth = self.scope["user"], self.scope["auth"]
        self.registered = False
        self.groups_joined: list[str] = []
        if not user.is_authenticated:
            # The one log line of a refusal: its reason, never the credential.
            level = logging.WARNING if auth.unavailable else logging.INFO
            logger.log(level, "websocket refused: %s", auth.error)
            await self.close()  # before accept: daphne answers HTTP 403
            return
        self.user, self.user_id, self.sid = user, user.pk, auth.sid
        self.streams = StreamSubscriptions(socket=self, user=user)
        # Select authsocket.v1 whenever it was offered (always with the token
        # subprotocol); the token subprotocol itself is never echoed.
        offered = self.scope.get("subprotocols") or ()
        self.subprotocol = SUBPROTOCOL if SUBPROTOCOL in offered else None
        if not registry.add(self, limit=settings.AUTHSOCKET_MAX_CONNECTIONS_PER_USER):
            logger.info("websocket closed: user %s at the connection limit", user.pk)
            await self.accept(self.subprotocol)
            await self.close(code=CloseCode.TOO_MANY_CONNECTIONS)
            return
        # Registered BEFORE joining the groups: from here on the revocation
        # watcher finds this socket, so a revocation committed after the
        # middleware's check is never lost, whatever the channel layer does.
        self.registered = True
        if not await self._join_groups():
            await self.close()
            return
        # A revocation seen while we joined (its group message went nowhere):
        # checked after the last await, so nothing can slip in before accept.
        if guard.is_revoked(self.sid):
            logger.info("websocket refused: session revoked during the handshake")
            await self.close()
            return
        await self.accept(self.subprotocol)
        self.limiter = FrameLimiter(settings.AUTHSOCKET_FRAME_RATE)
        self.expiry = ExpiryTimer(self._warn_expiring, self._expire)
        claims = auth.claims
        self.expiry.schedule(
            auth.expires_at, None if claims is None else claims.exp - claims.iat
        )
        await self.send_frame(
            ServerFrame.WELCOME,
            user={"id": user.pk, "username": user.get_username()},
            session=self.sid,
            expires_at=auth.expires_at,
            protocol=PROTOCOL_VERSION,
        )

    async def _join_groups(self) -> bool:
        """Join the user's group; a layer failure refuses the socket."""
        group = user_group(self.user_id)
        try:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
        except Exception as exc:
            logger.warning(
                "websocket refused: channel layer unavailable (%s)", type(exc).__name__
            )
            return False
        return True

    async def disconnect(self, code: int) -> None:
        if not self.registered:
            return
        self.registered = False
        registry.remove(self)
        if hasattr(self, "expiry"):
            self.expiry.cancel()
        for group in self.groups_joined:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:  # the layer expires stale members by itself
                break
        self.groups_joined.clear()
        await self.streams.leave()

    async def close(self, code=None, reason=None) -> None:
        # autobahn (under daphne) accepts only a plain int as a close code: an
        # IntEnum member raises inside daphne and the client gets 1011.
        await super().close(code=None if code is None else int(code), reason=reason)

    async def websocket_disconnect(self, message: dict) -> None:
        """Channels' version, minus its `close_old_connections` hop (see dispatch).

        We join groups ourselves (`groups` is empty), and `disconnect()` leaves
        them; the profile showed the hop at ~6 % of a handshake's cycle.
        """
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def close_for(self, code: int) -> None:
        """Close from outside this socket's own handlers (revocation, shutdown)."""
        await self.close(code=code)

    # --- frames ------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if text_data is None:
            await self.close(code=CloseCode.BINARY_FRAME)
            return
        if _utf8_length(text_data) > settings.AUTHSOCKET_MAX_MESSAGE_BYTES:
            await self.close(code=CloseCode.MESSAGE_TOO_BIG)
            return
        if not self.limiter.take():
            if self.limiter.flooding:
                await self.close(code=CloseCode.RATE_LIMITED)
            else:
                await self.send_error(
                    ErrorCode.RATE_LIMITED, "Too many frames; slow down."
                )
            return
        frame = None
        try:
            frame = _parse_frame(text_data)
            handler = self.handlers.get(frame["type"])
            if handler is None:
                raise FrameError(
                    ErrorCode.UNKNOWN_TYPE, f"Unknown frame type {frame['type']!r}."
                )
            problem = frame_problem(frame)
            if problem is not None:
                raise FrameError(ErrorCode.BAD_REQUEST, problem)
            await handler(self, frame)
        except FrameError as exc:
            await self.send_error(exc.code, exc.detail, frame)

    async def send_frame(
        self, frame_type: str, request: dict | None = None, **fields
    ) -> None:
        """Send one frame; `ref` of the request it answers is echoed."""
        frame = {"type": frame_type, **fields}
        if request is not None and "ref" in request:
            frame["ref"] = request["ref"]
        await self.send(text_data=dumps(frame))

    async def send_error(
        self, code: ErrorCode, detail: str, request: dict | None = None
    ) -> None:
        await self.send_frame(ServerFrame.ERROR, request, code=code, detail=detail)

    async def on_ping(self, frame: dict) -> None:
        await self.send_frame(ServerFrame.PONG, frame)

    async def on_auth(self, frame: dict) -> None:
        """Renew the socket's credential in-band; its expiry moves to the new token's."""
        try:
            claims = decode_access(frame.get("token"))
            if claims.user_id != self.user_id or claims.sid != self.sid:
                raise InvalidToken("token of another user or session")
        except InvalidToken:
            raise FrameError(
                ErrorCode.INVALID_TOKEN, "Invalid token; the old expiry stands."
            ) from None
        try:
            await guard.check(sid=claims.sid, user_id=claims.user_id)
        except SessionRefused:
            await self.close(code=CloseCode.REVOKED)
            return
        except (DatabaseError, OSError) as exc:
            logger.warning(
                "auth frame refused: database unavailable (%s)", type(exc).__name__
            )
            raise FrameError(
                ErrorCode.INVALID_TOKEN, "Cannot verify now; the old expiry stands."
            ) from None
        self.expiry.schedule(claims.exp, claims.exp - claims.iat)
        await self.send_frame(ServerFrame.AUTH_OK, frame, expires_at=claims.exp)

    # --- timers and channel-layer events -----------------------------------

    async def _warn_expiring(self, expires_at: int) -> None:
        await self.send_frame(ServerFrame.AUTH_EXPIRING, expires_at=expires_at)

    async def _expire(self) -> None:
        await self.close(code=CloseCode.TOKEN_EXPIRED)

    async def sessions_revoked(self, event: dict) -> None:
        """Sent to the user's group: close if this socket's session is named.

        The guard learns every named session too, so this process refuses their
        new handshakes now, not at its next poll: one view of a session.
        """
        sids = [sid for sid in event.get("sids", ()) if isinstance(sid, str)]
        guard.mark_revoked(sids)
        if self.sid in sids:
            await self.close(code=CloseCode.REVOKED)

    # --- streams: one owner, `self.streams` -----------------------------------

    async def on_subscribe(self, frame: dict) -> None:
        await self.streams.subscribe(frame)

    async def on_unsubscribe(self, frame: dict) -> None:
        await self.streams.unsubscribe(frame)

    async def on_publish(self, frame: dict) -> None:
        await self.streams.publish(frame)

    async def stream_message(self, event: dict) -> None:
        await self.streams.message_arrived(event)

    async def stream_revoke(self, event: dict) -> None:
        await self.streams.rights_changed(event)

    handlers = {  # frame type → handler
        ClientFrame.PING: on_ping,
        ClientFrame.AUTH: on_auth,
        ClientFrame.SUBSCRIBE: on_subscribe,
        ClientFrame.UNSUBSCRIBE: on_unsubscribe,
        ClientFrame.PUBLISH: on_publish,
    }


def _utf8_length(text: str) -> int:
    """UTF-8 size without encoding when the answer is obvious from the length."""
    if len(text) * 4 <= settings.AUTHSOCKET_MAX_MESSAGE_BYTES:
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


# A JSON escape of a UTF-16 surrogate; alone it decodes to text UTF-8 cannot carry.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _parse_frame(text: str) -> dict:
    try:
        frame = strict_json.loads(text)
    except strict_json.StrictJSONError as exc:
        raise FrameError(
            ErrorCode.BAD_REQUEST, f"Frames must be strict JSON: {exc}"
        ) from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise FrameError(
            ErrorCode.BAD_REQUEST, 'A frame is a JSON object with a "type".'
        )
    if _SURROGATE_ESCAPE.search(text):
        # Echoed back (`ref`) or stored, a lone surrogate would make daphne's
        # UTF-8 encoding of our reply fail; refuse it here instead.
        try:
            dumps(frame).encode("utf-8")
        except UnicodeEncodeError:
            raise FrameError(
                ErrorCode.BAD_REQUEST, "Frames must be valid Unicode text."
            ) from None
    return frame
