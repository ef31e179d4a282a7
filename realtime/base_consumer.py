"""`AuthenticatedConsumer`: what every authsocket WebSocket endpoint guarantees.

The rules of docs/protocol.md §4.1–§4.3 in one class; the multiplexed `/ws/`
consumer (realtime.consumers) is built on it, and so is any consumer a project
adds on its own path (docs/extending.md).
"""

import inspect
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from channels.exceptions import StopConsumer
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError

from accounts.tokens import InvalidToken, decode_access
from core import metrics
from core.memory import reclaimer
from core.throttled_log import ThrottledLog
from realtime.channels_overrides import HoplessWebsocketConsumer
from realtime.connections import registry
from realtime.expiry import ExpiryTimer
from realtime.frame_fields import FIELDS, Field, frame_problem
from realtime.frames import FrameError, dumps, frame_echo, frame_parse, frame_too_big
from realtime.groups import MAX_GROUP_LENGTH, user_group
from realtime.presence import registry_get
from realtime.presence.broadcast import presence_broadcast, registry_started
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

logger = logging.getLogger(__name__)

# What §4.1–§4.3 rest on: a subclass extends through hooks, never replaces these.
# `on_auth` is the only place a socket's expiry moves, after checking the new
# token; `ping` and `auth` are the protocol's own frames (docs/extending.md:
# "taken"), answered the same on every path.
SEALED = (
    "connect",
    "disconnect",
    "receive",
    "dispatch",
    "websocket_connect",
    "websocket_receive",
    "websocket_disconnect",
    "sessions_revoked",
    "on_ping",
    "on_auth",
)
# Channels' rule for group names: these characters, fewer than 100 of them.
GROUP_NAME = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_GROUP_LENGTH}}}")
# The database is unreachable or its connection broke: an outage, not a bug.
# Its other errors (IntegrityError, ProgrammingError…) are bugs: they keep
# their traceback.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
# One line per 10 s for an outage that closes many sockets (core/throttled_log.py).
database_outage_log = ThrottledLog(logger, every=10.0)


@dataclass(frozen=True)
class FrameSpec:
    """A client frame type: the method that answers it and its typed fields."""

    handler: str  # name of an `async def handler(self, frame: dict)` method
    fields: Mapping[str, Field] = field(default_factory=dict)


class AuthenticatedConsumer(HoplessWebsocketConsumer):
    """A WebSocket endpoint with authsocket's guarantees; subclass it for your path.

    Before your code runs: anonymous handshakes are refused before accept
    (HTTP 403, nothing sent; credentials were resolved by the middleware,
    Origin checked in front of it), a user over
    `AUTHSOCKET_MAX_CONNECTIONS_PER_USER` sockets (all paths count) is closed
    4409, then the socket is accepted and greeted with `welcome`. Afterwards:
    frames over `AUTHSOCKET_MAX_MESSAGE_BYTES` close 4413, binary frames 4415,
    floods get `rate_limited` then 4429; frames must be strict JSON objects
    with a `type` whose fields have the declared types (else `bad_request`),
    unknown types get `unknown_type`; `ping` and `auth` renewal are built in;
    each welcomed socket counts in the registry of live sockets (the admin's
    "connected now", the server API's connection counts) until it closes;
    the token's expiry warns (`auth.expiring`) then closes 4401; a revoked
    session or a deactivated user closes 4403; a shutting-down server closes
    4503; a handler that raises closes 1011 with this socket's state released
    (a database outage with one short line, any other error with its
    traceback).

    Extend it with hooks, never by overriding `connect`, `receive`,
    `disconnect` or the built-in `on_ping` and `on_auth` (refused at class
    creation):

    - `frames = {"cursor": FrameSpec("on_cursor", {"x": NUMBER})}` declares
      your own frame types (merged with the built-ins; redeclaring one is an
      error); `on_cursor(self, frame)` gets frames whose fields checked out.
      Answer with `send_frame(type, frame, **fields)` (echoes `ref`) or
      `raise FrameError(ErrorCode.X, detail)`.
    - `socket_allowed()`: return False to refuse an authenticated user before
      accept (e.g. no right to the object named in the URL).
    - `socket_authenticated()`: runs after `welcome`; e.g. join groups with
      `group_join()` (left on close).
    - `socket_closed(code)`: runs once after a welcomed socket's state is
      released, whoever closed it.
    - channel-layer events: methods named after their type, as in Channels.

    `self.user`, `self.user_id`, `self.sid` and `self.scope["url_route"]` are
    set before any hook runs. Route the class next to `/ws/` in
    authsocket/routing.py.
    """

    frames: ClassVar[Mapping[str, FrameSpec]] = {
        ClientFrame.PING: FrameSpec("on_ping", FIELDS[ClientFrame.PING]),
        ClientFrame.AUTH: FrameSpec("on_auth", FIELDS[ClientFrame.AUTH]),
    }
    frame_table: ClassVar[Mapping[str, FrameSpec]] = frames  # own + inherited

    # A process holds thousands of these: the state of each lives in slots, not
    # in a per-instance dict that grows as connect() fills it in.
    __slots__ = (
        "user",
        "user_id",
        "sid",
        "subprotocol",
        "groups_joined",
        "limiter",
        "expiry",
        "registered",  # counted in the registry; state to release on close
        "listed",  # in the registry of live sockets on every process
        "welcomed",  # socket_authenticated ran: socket_closed will
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.registered = self.listed = self.welcomed = False
        self.limiter: FrameLimiter | None = None  # set once the socket is let in
        self.groups_joined: list[str] = []
        self.closing = False  # a close was sent: it decided the code

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in SEALED:
            # Through the MRO: a mixin listed first would replace it just as well.
            if getattr(cls, name) is not getattr(AuthenticatedConsumer, name):
                raise TypeError(
                    f"{cls.__name__} overrides {name}(): extend AuthenticatedConsumer "
                    "through its hooks (socket_allowed, socket_authenticated, "
                    "socket_closed, frames) so that its guarantees hold."
                )
        cls.frame_table = _frame_table(cls)

    # --- hooks ---------------------------------------------------------------

    async def socket_allowed(self) -> bool:
        """Whether this authenticated user may open this socket; False refuses it."""
        return True

    async def socket_authenticated(self) -> None:
        """The socket is open and welcomed."""

    async def socket_closed(self, code: int) -> None:
        """The socket is gone; its registry place, timers and groups are released."""

    # --- lifecycle -------------------------------------------------------------

    async def connect(self) -> None:
        user, auth = self.scope["user"], self.scope["auth"]
        if not user.is_authenticated:
            # The one log line of a refusal: its reason, never the credential.
            level = logging.WARNING if auth.unavailable else logging.INFO
            logger.log(level, "websocket refused: %s", auth.error)
            await self.close()  # before accept: daphne answers HTTP 403
            return
        self.user, self.user_id, self.sid = user, user.pk, auth.sid
        # Select authsocket.v1 whenever it was offered (always with the token
        # subprotocol); the token subprotocol itself is never echoed.
        offered = self.scope.get("subprotocols") or ()
        self.subprotocol = SUBPROTOCOL if SUBPROTOCOL in offered else None
        if not await self.socket_allowed():
            logger.info("websocket refused: not allowed on %s", self.scope["path"])
            await self.close()
            return
        if not registry.add(self, limit=settings.AUTHSOCKET_MAX_CONNECTIONS_PER_USER):
            logger.info("websocket closed: user %s at the connection limit", user.pk)
            await self.accept(self.subprotocol)
            await self.close(code=CloseCode.TOO_MANY_CONNECTIONS)
            return
        # Registered BEFORE joining the groups: from here on the revocation
        # watcher finds this socket, so a revocation committed after the
        # middleware's check is never lost, whatever the channel layer does.
        self.registered = True
        # Before accept a close is HTTP 403 whatever its code: the code only
        # tells the handshake metrics why (realtime/socket_metrics.py).
        if not await self._join_groups():
            await self.close(code=CloseCode.INTERNAL_ERROR)
            return
        # A revocation seen while we joined (its group message went nowhere):
        # checked after the last await, so nothing can slip in before accept.
        if guard.is_revoked(self.sid):
            logger.info("websocket refused: session revoked during the handshake")
            await self.close(code=CloseCode.REVOKED)
            return
        await self.accept(self.subprotocol)
        self.limiter = FrameLimiter(settings.AUTHSOCKET_FRAME_RATE)
        self.expiry = ExpiryTimer(self._warn_expiring, self._expire)
        self.expiry.schedule(auth.expires_at, auth.lifetime)
        await self.send_frame(
            ServerFrame.WELCOME,
            user={"id": user.pk, "username": user.get_username()},
            session=self.sid,
            expires_at=auth.expires_at,
            protocol=PROTOCOL_VERSION,
        )
        # Every path counts in "connected now" and the server API's counts.
        # Marked first: a consumer cancelled while its store write waits on
        # Redis must still be forgotten (`socket_close` is idempotent).
        self.listed = True
        live = await registry_started()
        await live.socket_open(
            self.channel_name,
            user_id=user.pk,
            username=user.get_username(),
            sid=self.sid,
        )
        self.welcomed = True
        await self.socket_authenticated()

    async def _join_groups(self) -> bool:
        """Join the user's group (revocations); a layer failure refuses the socket."""
        group = user_group(self.user_id)
        try:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
        except Exception as exc:
            metrics.channel_layer_error("group_add")
            logger.warning(
                "websocket refused: channel layer unavailable (%s)", type(exc).__name__
            )
            return False
        return True

    async def disconnect(self, code: int) -> None:
        """Release this socket's state once, however it ended (see dispatch).

        What awaits (the layer, the registry's store, `socket_closed`) runs
        to its end even if daphne cancels the consumer meanwhile (it waits
        on a stalled Redis): `release_shielded`.
        """
        if not self.registered:
            return
        self.registered = False
        registry.remove(self)
        reclaimer.socket_closed(still_open=registry.open_count())
        if hasattr(self, "expiry"):
            self.expiry.cancel()
            # The timer holds this consumer's methods: a cycle only a full
            # collection would free (core/memory.py). Refcounting frees both now.
            del self.expiry
        if self.groups_joined or self.listed or self.welcomed:
            await self.release_shielded(self._release(code))

    async def _release(self, code: int) -> None:
        """The part of `disconnect` that awaits: groups, presence, the hook."""
        for group in self.groups_joined:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:  # the layer expires stale members by itself
                break
        self.groups_joined.clear()
        if self.listed:
            self.listed = False
            # The leaves of every stream this socket was on, to every process.
            presence_broadcast(await registry_get().socket_close(self.channel_name))
        if self.welcomed:
            await self.socket_closed(code)

    async def close(self, code=None, reason=None) -> None:
        """Close once: the first close's code is the one the client gets.

        Two paths can close one socket (a revocation's message and the
        revocation poll): the later one must neither send nor count again.
        """
        if self.closing:
            return
        self.closing = True
        # autobahn (under daphne) accepts only a plain int as a close code: an
        # IntEnum member raises inside daphne and the client gets 1011.
        await super().close(code=None if code is None else int(code), reason=reason)

    async def close_for(self, code: int) -> None:
        """Close from outside this socket's own handlers (revocation poll)."""
        await self.close(code=code)

    async def _handler_failed(self, message: dict, exc: Exception) -> None:
        """A database outage in a handler closes the socket 1011 without a
        traceback (channels_overrides calls this once the state is released).

        Raised further, daphne would log the error with its traceback and
        close 1011. An outage is no bug: it meets every socket that needs the
        database, so this socket says so in one rate-limited line, counts it
        and closes 1011 itself, then ends, as a crashed one would. Any other
        error, and one before accept (HTTP 500), goes on to daphne.
        """
        if isinstance(exc, DATABASE_UNAVAILABLE) and self.limiter is not None:
            await self._database_failed(message["type"], exc)
            raise StopConsumer() from None

    async def _database_failed(self, message_type: str, exc: Exception) -> None:
        frame = message_type == "websocket.receive"
        metrics.database_error("frame" if frame else "event")
        database_outage_log.warning(
            "websocket closed 1011: database unavailable (%s) on %s",
            type(exc).__name__,
            "a frame" if frame else f"event {message_type}",
        )
        await self.close(code=CloseCode.INTERNAL_ERROR)

    # --- groups ----------------------------------------------------------------

    async def group_join(self, group: str) -> bool:
        """Join a channel-layer group, left on close; False (closed 4503) if the layer fails.

        A name the layer can never take is this class's bug, not an outage:
        it raises (the socket closes 1011, logged) rather than count a
        channel-layer error and tell the client to come back (4503) forever.
        """
        _group_name_check(type(self), group)
        try:
            await self.channel_layer.group_add(group, self.channel_name)
        except Exception as exc:
            await self.layer_failed("group_add", exc)
            return False
        if group not in self.groups_joined:
            self.groups_joined.append(group)
        return True

    async def layer_failed(self, operation: str, exc: Exception) -> None:
        """The channel layer refused a join this socket needs: close it 4503.

        4503 tells the client what to do: reconnect with backoff.
        """
        metrics.channel_layer_error(operation)
        logger.warning("channel layer unavailable on join: %s", type(exc).__name__)
        await self.close(code=CloseCode.SHUTTING_DOWN)

    async def group_leave(self, group: str) -> None:
        """Leave a group joined with `group_join`; a layer failure is only logged."""
        if group in self.groups_joined:
            self.groups_joined.remove(group)
        try:
            await self.channel_layer.group_discard(group, self.channel_name)
        except Exception:  # the layer expires stale members by itself
            logger.warning("channel layer unavailable on leave")

    # --- frames ------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self.limiter is None:
            return  # accepted only to be closed 4409: nothing it sends is read
        if text_data is None:
            await self.close(code=CloseCode.BINARY_FRAME)
            return
        if frame_too_big(text_data):
            await self.close(code=CloseCode.MESSAGE_TOO_BIG)
            return
        if not self.limiter.take():
            if self.limiter.flooding:
                await self.close(code=CloseCode.RATE_LIMITED)
            else:
                # The refused frame's `ref` is echoed like any answer's.
                await self.send_error(
                    ErrorCode.RATE_LIMITED,
                    "Too many frames; slow down.",
                    frame_echo(text_data),
                )
            return
        frame = None
        try:
            frame = frame_parse(text_data)
            metrics.frame_received(frame["type"], known=self.frame_table)
            spec = self.frame_table.get(frame["type"])
            if spec is None:
                raise FrameError(
                    ErrorCode.UNKNOWN_TYPE, f"Unknown frame type {frame['type']!r}."
                )
            problem = frame_problem(frame, spec.fields)
            if problem is not None:
                raise FrameError(ErrorCode.BAD_REQUEST, problem)
            await getattr(self, spec.handler)(frame)
        except FrameError as exc:
            # An object refused for its `type` was no frame yet: its `ref` is echoed.
            await self.send_error(
                exc.code, exc.detail, exc.request if frame is None else frame
            )

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
            metrics.database_error("auth_frame")
            logger.warning(
                "auth frame refused: database unavailable (%s)", type(exc).__name__
            )
            raise FrameError(
                ErrorCode.INVALID_TOKEN, "Cannot verify now; the old expiry stands."
            ) from None
        self.expiry.schedule(claims.exp, claims.exp - claims.iat)
        await self.send_frame(ServerFrame.AUTH_OK, frame, expires_at=claims.exp)

    # --- timers and channel-layer events -----------------------------------------

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
        if self.sid in sids and not self.closing:
            await self.close(code=CloseCode.REVOKED)
            metrics.revocation_closed(event.get("revoked_at"))

    async def stream_message(self, event: dict) -> None:
        """The user's group also carries the `user` stream: only `/ws/` delivers it."""

    async def stream_revoke(self, event: dict) -> None:
        """The user's group also carries re-checks of `/ws/` subscriptions
        (`rights_changed(..., user_id=...)`, a room left): none here."""


def _frame_table(cls: type) -> dict[str, FrameSpec]:
    """Every frame type `cls` answers, its own and inherited; mistakes raise now."""
    table: dict[str, FrameSpec] = {}
    for klass in reversed(cls.__mro__):
        for frame_type, spec in klass.__dict__.get("frames", {}).items():
            if frame_type in table:
                raise TypeError(
                    f"{cls.__name__}: frame type {frame_type!r} is already handled "
                    f"by {table[frame_type].handler}(); choose another name."
                )
            if not inspect.iscoroutinefunction(getattr(cls, spec.handler, None)):
                raise TypeError(
                    f"{cls.__name__}: frame type {frame_type!r} needs a method "
                    f"`async def {spec.handler}(self, frame)`."
                )
            _check_fields(cls, frame_type, spec.fields)
            table[frame_type] = spec
    return table


def _group_name_check(cls: type, group) -> None:
    """Raises TypeError for what no channel layer takes as a group name.

    The name is not shown: it may hold what a client put in the URL.
    """
    if isinstance(group, str) and GROUP_NAME.fullmatch(group):
        return
    what = f"{len(group)} characters" if isinstance(group, str) else type(group)
    raise TypeError(
        f"{cls.__name__}: the group name passed to group_join() ({what}) is not a "
        "channel-layer group name: ASCII letters, digits, '-', '_' and '.', at "
        f"most {MAX_GROUP_LENGTH} characters. Bound what you build it from, "
        "e.g. the ids your route captures (docs/extending.md)."
    )


def _check_fields(cls: type, frame_type: str, fields) -> None:
    """Declared field types are `realtime.frame_fields` ones, or the first frame
    of that type would crash its socket (1011) instead of stopping the class."""
    if not isinstance(fields, Mapping) or not all(
        isinstance(kind, Field) for kind in fields.values()
    ):
        raise TypeError(
            f"{cls.__name__}: frame type {frame_type!r} declares its fields as "
            f"{fields!r}; use a dict of realtime.frame_fields types (ANY, STRING, "
            "BOOLEAN, INTEGER, NUMBER, OBJECT, each optionally .optional())."
        )
