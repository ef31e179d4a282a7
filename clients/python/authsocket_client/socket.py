"""One authenticated, multiplexed WebSocket that keeps itself alive.

`AuthSocket` opens `/ws/` with the session's access token, renews the token
in band (an `auth` frame) before it expires, and after any drop reconnects
with capped exponential backoff and jitter, then subscribes every stream
again with `since` = the last id it delivered. Close codes are handled as
docs/protocol.md says; a refused handshake is explained by asking the HTTP
API, so dead credentials stop the socket instead of looping.

Subscribes are paced: a connection keeps at most `SUBSCRIBES_IN_FLIGHT`
unanswered, the others wait in order, and a `rate_limited` answer holds the
queue until the server's frame budget has refilled, so resubscribing many
streams after a reconnect (or subscribing many at once) is never closed 4429.

Events (messages, presence, lost subscriptions) come out of one async
iterator. Ids of a stream are checked, not trusted: a duplicate is dropped
but counted in `stats.duplicates` and logged, a gap is counted in
`stats.gaps`, so a server bug stays visible.

The `user` stream is live from `welcome`, before its resubscribe with
`since` is read: a notification sent in between makes the server answer
`reset`, as the ids under it can no longer come on that socket. They are
still stored, so the socket reads them over HTTP (`fill`) and hands them on
first; what the connection sends on `user` meanwhile waits (`held`), so the
caller sees the stream in id order.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from authsocket_client.backoff import Backoff
from authsocket_client.errors import (
    AuthSocketError,
    ConnectionStopped,
    CredentialsRejected,
    Disconnected,
    FrameError,
    NetworkError,
    NotLive,
)
from authsocket_client.log_redaction import websockets_logger
from authsocket_client.presence import PresenceEvent, PresenceView
from authsocket_client.protocol import (
    SUBPROTOCOL,
    TOKEN_SUBPROTOCOL_PREFIX,
    TRANSPORTS,
    USER_STREAM,
    CloseCode,
    is_id,
    is_user,
    strict_json,
)
from authsocket_client.tokens import Tokens

logger = logging.getLogger("authsocket_client")
# A socket that lived this long earns a fresh backoff (and, after 4401 or
# 1000, an immediate reconnect); a younger one does not.
MIN_LIFE_S = 1.0
# Subscribe requests one connection keeps unanswered at once; the others wait
# in order and go out as answers arrive. The server refuses frames beyond its
# budget (`AUTHSOCKET_FRAME_RATE`: N a second, bursts of 2N) and closes 4429
# once more than N refusals are outstanding (each accepted frame and each
# second forgive some). With at most 8 in flight, at most 8 can be refused
# before the first refusal holds the queue, so subscribing any number of
# streams cannot close a socket on a server that allows 8 frames a second or
# more (the default is 50/s); and 8 per round trip still subscribes quickly
# over a slow network.
SUBSCRIBES_IN_FLIGHT = 8
# The largest frame read by default (websockets' own default): a server
# frame is its message's data, at most the server's AUTHSOCKET_MAX_MESSAGE_BYTES
# (64 KiB unless raised), and 2 KiB of envelope.
MAX_MESSAGE_BYTES = 2**20
FRAME_TOO_BIG = 1009  # the close websockets sends over `max_message_bytes`
# Reading the `user` ids a `reset` skipped (see `_fill`): a page is the most
# the history API answers at once; a page is tried this many times, with
# backoff, before the ids left are given up on (a counted gap). Bounded, as
# the live `user` messages wait for it.
FILL_PAGE = 200
FILL_TRIES = 3
# Frames of a stream that wait while its earlier ids are read (`_hold`).
HELD_KINDS = frozenset({"message", "replay.truncated", "subscribed"})


class State:
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Message:
    """A stored message of a stream, live or replayed."""

    stream: str
    id: int
    data: Any
    sender: dict[str, Any] | None
    ts_ms: int | None
    replay: bool

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> Message:
        """Checked, not trusted: ValueError for a `stream` that is not a
        string, an `id` that is not an integer (ids are compared with
        positions), or a `sender` that is neither null (the server) nor a
        user with an integer `id` (whose `username` a reader would ask for)."""
        if not isinstance(frame.get("stream"), str) or not is_id(frame.get("id")):
            raise ValueError("a message frame without a valid stream or id")
        sender = frame.get("sender")
        if sender is not None and not is_user(sender):
            raise ValueError("a message frame whose sender is not a user")
        return cls(
            stream=frame["stream"],
            id=frame["id"],
            data=frame.get("data"),
            sender=frame.get("sender"),
            ts_ms=frame.get("ts_ms"),
            replay=bool(frame.get("replay")),
        )


@dataclass(frozen=True)
class Unsubscribed:
    """The server ended a subscription (the right to read it is gone)."""

    stream: str
    reason: str


Event = Message | PresenceEvent | Unsubscribed


@dataclass
class Stats:
    """What happened on this socket; `duplicates` and `gaps` expose server bugs."""

    connects: int = 0
    renewals: int = 0
    refusals: int = 0
    resets: int = 0
    closes: Counter = field(default_factory=Counter)  # close code → times
    duplicates: Counter = field(default_factory=Counter)  # stream → dropped
    gaps: Counter = field(default_factory=Counter)  # stream → ids skipped
    rate_limited: int = 0  # subscribes refused `rate_limited`, sent again later
    fills: int = 0  # `user` resets whose skipped ids were read over HTTP


@dataclass
class _Stream:
    name: str
    presence: bool = False
    position: int | None = None  # the highest id delivered to the caller
    # The highest id this connection delivered: the server sends none twice
    # on one socket (§4.2), so a `since` below it replays nothing.
    delivered_here: int | None = None
    history: bool = True  # False: its kind keeps none, so `since` is refused
    resyncing: bool = False  # after replay.truncated, until subscribed again
    reset: bool = False  # `subscribed` said reset: the next id may skip some
    view: PresenceView | None = None
    # `user` only, per connection: its frames wait here, in order, from
    # `welcome` until its resubscribe with `since` is answered, and while a
    # fill reads the ids that answer's `reset` skipped (None: none wait).
    held: list[dict[str, Any]] | None = None
    answered: bool = False  # that resubscribe was answered (or timed out)
    first_here: int | None = None  # the first id the connection sent of it
    fill: asyncio.Task | None = None


@dataclass(eq=False)
class _Subscribe:
    """A subscribe of the live connection: queued, or sent and unanswered."""

    entry: _Stream
    order: int  # its place in the queue, kept when a refusal puts it back
    future: asyncio.Future | None  # the caller's; None: the socket's own
    timeout: float  # how long a sent one holds its slot without an answer
    timer: asyncio.TimerHandle | None = None  # frees the slot at the timeout
    since: int | None = None  # the `since` it was sent with


@dataclass
class _Pending:
    future: asyncio.Future | None  # None for a subscribe: see `subscribe`
    subscribe: _Subscribe | None = None


class _Refused(Exception):
    """The upgrade was refused (HTTP status other than 101)."""

    def __init__(self, status: int):
        self.status = status


class _NotWelcomed(Exception):
    """The upgrade passed, but no `welcome` came within `open_timeout`."""


_STOP = object()  # end of the event queue


class Session(Protocol):
    """What a socket needs of its session, an `ApiClient`: where the server
    is, the tokens, fresh ones on demand, tickets, and a call that says why
    credentials stopped working. Named here so that the socket does not
    import the client that makes it (`ApiClient.socket`)."""

    url: str

    @property
    def tokens(self) -> Tokens | None: ...

    async def fresh_tokens(
        self, *, min_remaining: float = 0.0, not_this: str | None = None
    ) -> Tokens: ...

    async def ticket(self) -> str: ...

    async def me(self) -> dict[str, Any]: ...

    async def stream_messages(
        self, stream: str, *, after: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]: ...


class AuthSocket:
    """A reconnecting socket of one `ApiClient` session.

    transport: how the handshake carries the token — "header" (default:
    `Authorization: Bearer`), "subprotocol", "ticket" (one-time ticket in the
    URL) or "query" (`?token=`, which puts the JWT in URLs and logs).
    renew_at: the share of the token's life after which it is renewed in band;
    renew=False lets it expire instead (close 4401, refresh, reconnect).
    open_timeout: how long the handshake may take (seconds), and then how
    long `welcome` may: a connection not welcomed by then is closed, and
    tried again after the backoff.
    max_message_bytes: the largest frame read (1 MiB); a larger one closes
    the connection (1009). Raise it above the server's
    `AUTHSOCKET_MAX_MESSAGE_BYTES` + 2 KiB when that is over 1 MiB, or a
    stored message that big is replayed, and closes, at every reconnect.
    max_retry_wait: the longest wait (seconds) before the next try when the
    HTTP API answers the socket's own calls (refresh, ticket, `me`) 429 or
    5xx with a `Retry-After` (60: the server's throttles are per minute).
    A server or proxy asking for longer (a day, `1e999`) would stall the
    socket that long, or for ever: it is waited this long instead, and the
    socket tries again, as often as it takes (logged once as a warning).
    """

    def __init__(
        self,
        api: Session,
        *,
        transport: str = "header",
        ws_url: str | None = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 15.0,
        long_backoff: float = 30.0,
        max_refusals: int = 6,
        renew_at: float = 0.5,
        renew: bool = True,
        open_timeout: float = 10.0,
        request_timeout: float = 10.0,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_retry_wait: float = 60.0,
        on_state: Callable[[str, str], None] | None = None,
    ):
        if transport not in TRANSPORTS:
            raise ValueError(
                f"transport must be one of {TRANSPORTS}, not {transport!r}"
            )
        if not 0 <= max_retry_wait < math.inf:
            raise ValueError(
                f"max_retry_wait must be a finite number >= 0, not {max_retry_wait!r}"
            )
        self.api = api
        self.transport = transport
        self.ws_url = _checked_ws_url(ws_url or _ws_url(api.url))
        self.backoff = Backoff(base=backoff_base, cap=backoff_cap)
        self.long_backoff = long_backoff
        self.max_refusals = max_refusals
        self.renew_at = renew_at
        self.renew = renew
        self.open_timeout = open_timeout
        self.max_message_bytes = max_message_bytes
        self.request_timeout = request_timeout
        self.max_retry_wait = max_retry_wait
        self.on_state = on_state

        self.state = State.CONNECTING
        self.welcome: dict[str, Any] | None = None
        self.protocol: str | None = None
        self.error: AuthSocketError | None = None  # why it stopped, if it did
        self.stats = Stats()

        self._streams: dict[str, _Stream] = {USER_STREAM: _Stream(USER_STREAM)}
        self._events: asyncio.Queue = asyncio.Queue()
        self._pending: dict[int, _Pending] = {}
        self._refs = itertools.count(1)
        self._ws: ClientConnection | None = None
        self._tokens: Tokens | None = None  # the token the live socket runs on
        self._stale: str | None = None  # a token the server called expired
        # The `exp` the connection runs on, as the server said it (`welcome`,
        # `auth.ok`), and the one the last `auth.expiring` warned of: a
        # warning of an earlier `exp` came for a token already replaced.
        self._expires_at: int | None = None
        self._warned_of: int | None = None
        self._live = asyncio.Event()
        self._stopped = asyncio.Event()
        self._expiring = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopper: asyncio.Task | None = None
        # The live connection's subscribes (see SUBSCRIBES_IN_FLIGHT).
        self._queue: list[tuple[int, _Subscribe]] = []  # a heap: waiting, in order
        self._in_flight: set[_Subscribe] = set()  # sent, each holding a slot
        self._order = itertools.count()
        # After `rate_limited` the queue waits 1-2 s, by when the server's
        # bucket has refilled N frames. Pauses double, up to 30 s, while no
        # subscribe is accepted between them; an accepted one resets them.
        self._pause = Backoff(base=2.0, cap=30.0)
        self._paused: asyncio.Task | None = None  # the pause under way
        self._pumps: set[asyncio.Task] = set()  # queue runs not on the reader
        self._connected_at = 0.0
        # Set once a `Retry-After` over `max_retry_wait` is logged; cleared
        # at `welcome`, so each run of them warns once, not at every retry.
        self._retry_capped = False

    # --- lifecycle --------------------------------------------------------------

    async def __aenter__(self) -> AuthSocket:
        self.start()
        await self.wait_live()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    def start(self) -> None:
        """Start connecting in the background (idempotent).

        Does nothing once closed (`close()` is for good, started or not):
        `wait_live()` then raises as on any stopped socket and the event
        iterator ends, instead of opening a connection nothing would close.
        """
        if self._task is None and not self._stopped.is_set():
            self._task = asyncio.create_task(self._run(), name="authsocket")

    async def wait_live(self, timeout: float | None = None) -> None:
        """Wait until welcomed; raises the error that stopped the socket, if any,
        and NotLive (a NetworkError, and a TimeoutError) once `timeout` is out."""
        self.start()
        live = asyncio.ensure_future(self._live.wait())
        stopped = asyncio.ensure_future(self._stopped.wait())
        try:
            done, _ = await asyncio.wait(
                {live, stopped}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            live.cancel()
            stopped.cancel()
        if self._stopped.is_set():
            raise self.error or Disconnected("the socket was closed")
        if not done:
            raise NotLive(f"the socket was not live within {timeout} s")

    async def close(self) -> None:
        """Close for good (no reconnect); the event iterator ends."""
        await self._stop(None)

    @property
    def live(self) -> bool:
        return self._live.is_set()

    # --- streams ----------------------------------------------------------------

    async def subscribe(
        self,
        stream: str,
        *,
        since: int | None = None,
        presence: bool = False,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Follow `stream`, also after reconnects; answers the `subscribed` frame.

        `since`: the last id the caller already has (0: everything stored).
        On a stream held already, a `since` below what this connection has
        delivered does not replay it (nor would the server, §4.2).
        Raises FrameError (`forbidden`) when the stream may not be read.

        The request waits its turn in the connection's subscribe queue (at
        most `SUBSCRIBES_IN_FLIGHT` unanswered); one refused `rate_limited`
        is sent again after a pause, not raised. `timeout` bounds the wait
        for `welcome`, then for the answer once the frame is sent; the time
        spent queued is not counted. Raises Disconnected if the connection
        closes first, AuthSocketError `unsubscribed` if the stream is
        unsubscribed before its turn.
        """
        # Registered once live: a welcome that came first would subscribe it too.
        await self.wait_live(timeout)
        held = self._streams.get(stream)
        entry = self._streams.setdefault(stream, _Stream(stream))
        before = (entry.presence, entry.position)
        entry.presence = presence
        if since is not None:
            entry.position = _resumed(entry.delivered_here, since)
        asked = entry.position
        try:
            return await self._subscribe(entry, timeout)
        except FrameError:
            if held is None:
                self._streams.pop(stream, None)
            else:
                # A refused subscribe changes nothing on the server (a `since`
                # on a kind without history, presence on one without it): the
                # subscription held before goes on, and so must its entry.
                entry.presence = before[0]
                if entry.position == asked:  # no message moved it meanwhile
                    entry.position = before[1]
            raise

    async def unsubscribe(self, stream: str, *, timeout: float | None = None) -> None:
        entry = self._streams.pop(stream, None)
        if entry is not None:
            _unhold(entry)
        self._unqueue(stream)  # a subscribe still waiting is never sent
        if self.live:
            await self._request(
                {"type": "unsubscribe", "stream": stream}, timeout=timeout
            )

    async def publish(
        self, stream: str, data: Any, *, timeout: float | None = None
    ) -> int:
        """Publish and answer the stored id; waits for a live socket, never resends.

        A drop before the answer raises Disconnected: the message may or may not
        be stored (check the stream's history before publishing again).
        Data that is not strict JSON (NaN, infinity, a lone surrogate) raises
        NotJson at once, live or not: the server could not answer it.
        """
        strict_json(data)
        await self.wait_live(timeout)
        answer = await self._request(
            {"type": "publish", "stream": stream, "data": data}, timeout=timeout
        )
        message_id = answer.get("id")
        if not is_id(message_id):
            raise FrameError("bad_answer", "`published` without an integer `id`")
        return message_id

    async def ping(self, *, timeout: float | None = None) -> float:
        """Round trip over the live socket, in seconds."""
        await self.wait_live(timeout)
        started = time.monotonic()
        await self._request({"type": "ping"}, timeout=timeout)
        return time.monotonic() - started

    async def presence_snapshot(
        self, stream: str, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Ask once who is on `stream` (no subscription needed)."""
        await self.wait_live(timeout)
        return await self._request(
            {"type": "presence", "stream": stream}, timeout=timeout
        )

    def presence(self, stream: str) -> PresenceView | None:
        """The current view of a stream subscribed with `presence=True`."""
        entry = self._streams.get(stream)
        return entry.view if entry else None

    def position(self, stream: str) -> int | None:
        """The highest id of `stream` delivered so far (what `since` resumes from)."""
        entry = self._streams.get(stream)
        return entry.position if entry else None

    # --- events -----------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    async def events(self) -> AsyncIterator[Event]:
        """Messages, presence events and lost subscriptions, in arrival order.

        Ends when the socket is closed; raises the error that stopped it.
        One consumer at a time.
        """
        self.start()
        while True:
            event = await self._events.get()
            if event is _STOP:
                self._events.put_nowait(_STOP)  # later iterators end too
                if self.error is not None:
                    raise self.error
                return
            yield event

    async def messages(self) -> AsyncIterator[Message]:
        """Only the messages of `events()`."""
        async for event in self.events():
            if isinstance(event, Message):
                yield event

    async def presence_events(
        self, stream: str | None = None
    ) -> AsyncIterator[PresenceEvent]:
        """Only the presence of `events()`: snapshots, joins and leaves, as applied.

        Each event carries the view after it (`users`, `count`), so a caller
        that only wants "who is here now" reads the newest event's `users`.
        With `stream`, only that stream's.
        """
        async for event in self.events():
            if isinstance(event, PresenceEvent) and stream in (None, event.stream):
                yield event

    # --- the connection loop ----------------------------------------------------

    async def _run(self) -> None:
        try:
            while True:
                delay = await self._session()
                self._set_state(State.RECONNECTING, f"retry in {delay:.2f}s")
                await asyncio.sleep(delay)
        except AuthSocketError as exc:
            await self._stop(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of ours: stop loudly, never spin
            logger.exception("authsocket client stopped by an unexpected error")
            await self._stop(AuthSocketError("client_error", repr(exc)))

    async def _session(self) -> float:
        """One connection from handshake to close; answers the wait before the next."""
        try:
            tokens = await self._tokens_to_connect()
            ws = await self._open(tokens)
        except _Refused as refused:
            return await self._diagnose(refused.status)
        except AuthSocketError as exc:
            if not exc.transient:
                raise  # dead credentials, or an answer a retry cannot change
            return self._retry_wait(exc)
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            logger.info("server unreachable: %s", type(exc).__name__)
            return self.backoff.next_delay()
        self._ws, self._tokens = ws, tokens
        self._connected_at = time.monotonic()
        renewer = asyncio.create_task(self._renewer(ws) if self.renew else _idle())
        try:
            code = await self._read(ws)
        except _NotWelcomed:
            # Neither a close nor a connection that lived: no fresh backoff.
            logger.info("no welcome within %s s; reconnecting", self.open_timeout)
            await ws.close()
            return self.backoff.next_delay()
        except Exception:
            # Not a close: `_run` stops the socket, and this connection must
            # end with it (detached, `_stop` no longer sees it).
            await ws.close(CloseCode.INTERNAL_ERROR)
            raise
        finally:
            renewer.cancel()
            self._detach()
        if self._stopped.is_set():
            raise asyncio.CancelledError
        return self._after_close(code)

    async def _tokens_to_connect(self) -> Tokens:
        """Tokens good for a while; refreshed first if the server said expired."""
        current = self.api.tokens
        margin = (current.lifetime if current else 0) * self.renew_at / 2
        tokens = await self.api.fresh_tokens(min_remaining=margin, not_this=self._stale)
        self._stale = None
        return tokens

    async def _open(self, tokens: Tokens) -> ClientConnection:
        url, headers = self.ws_url, {}
        subprotocols: list[Subprotocol] | None = None
        if self.transport == "header":
            headers["Authorization"] = f"Bearer {tokens.access}"
        elif self.transport == "subprotocol":
            subprotocols = [
                Subprotocol(SUBPROTOCOL),
                Subprotocol(TOKEN_SUBPROTOCOL_PREFIX + tokens.access),
            ]
        elif self.transport == "ticket":
            url = _with_query(url, "ticket", await self.api.ticket())
        else:
            url = _with_query(url, "token", tokens.access)
        try:
            return await _connect(
                url,
                additional_headers=headers,
                subprotocols=subprotocols,
                open_timeout=self.open_timeout,
                max_size=self.max_message_bytes,
                logger=websockets_logger,  # its DEBUG log holds no credential
            )
        except websockets.InvalidStatus as exc:
            raise _Refused(exc.response.status_code) from None

    async def _read(self, ws: ClientConnection) -> int:
        """Handle frames until the connection ends; answers its close code."""
        while True:
            try:
                raw = await self._recv(ws)
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else CloseCode.ABNORMAL
                self.stats.closes[int(code)] += 1
                return int(code)
            # A Disconnected here: the next recv() tells how it closed.
            with contextlib.suppress(Disconnected):
                await self._on_frame(ws, raw)

    async def _recv(self, ws: ClientConnection) -> str | bytes:
        """The next frame; raises _NotWelcomed when `welcome` has not come
        within `open_timeout` of the upgrade. A server that accepts and never
        welcomes (a stuck consumer) would otherwise hold the socket
        `connecting` for ever: keepalive pings are still answered."""
        if self._live.is_set():
            return await ws.recv()
        left = self._connected_at + self.open_timeout - time.monotonic()
        try:
            async with asyncio.timeout(max(left, 0.0)):
                return await ws.recv()  # cancelling recv() loses no frame
        except TimeoutError:
            raise _NotWelcomed from None

    def _detach(self) -> None:
        self._ws = None
        self._live.clear()
        # The connection's subscribes end with it, queued or sent: the next
        # welcome subscribes every held stream again anyway.
        for task in [self._paused, *self._pumps]:
            if task is not None:
                task.cancel()
        self._paused = None
        self._pause.reset()
        # What was held was never handed on: the next connection resumes
        # from the position before it, and the server sends it again.
        for entry in self._streams.values():
            _unhold(entry)
        queued = [item for _, item in self._queue]
        self._queue.clear()
        self._in_flight.clear()
        for item in queued:
            _fail(item.future, Disconnected())
        for pending in self._pending.values():
            if pending.subscribe is not None:
                if pending.subscribe.timer is not None:
                    pending.subscribe.timer.cancel()
                _fail(pending.subscribe.future, Disconnected())
            else:
                _fail(pending.future, Disconnected())
        self._pending.clear()

    def _after_close(self, code: int) -> float:
        """What the close code asks of us (docs/protocol.md, closing codes)."""
        logger.info("socket closed with %s", code)
        if code == FRAME_TOO_BIG:
            logger.warning(
                "a server frame was over max_message_bytes (%s): raise it",
                self.max_message_bytes,
            )
        # Reconnect at once only the first time, and not after a connection
        # that died young (a server that keeps closing must not make us spin).
        lived = time.monotonic() - self._connected_at
        if lived > MIN_LIFE_S:
            # Not at `welcome`: a server that welcomes and drops at once would
            # be retried at the shortest delay forever.
            self.backoff.reset()
        first = self.backoff.attempt == 0 and lived > MIN_LIFE_S
        if code == CloseCode.TOKEN_EXPIRED:
            self._stale = self._tokens.access if self._tokens else None
            if first:
                self.backoff.attempt += 1
                return 0.0
            return self.backoff.next_delay()
        if code == CloseCode.REVOKED:
            raise CredentialsRejected("revoked", "the session was revoked (close 4403)")
        if code in (CloseCode.MESSAGE_TOO_BIG, CloseCode.BINARY_FRAME):
            raise ConnectionStopped(
                "client_bug", f"the server closed with {code}", close_code=code
            )
        if code == CloseCode.TOO_MANY_CONNECTIONS:
            return self.backoff.next_delay(self.long_backoff)
        if code == CloseCode.RATE_LIMITED:
            return self.backoff.next_delay(2 * self.long_backoff)
        if code == CloseCode.NORMAL and first:
            self.backoff.attempt += 1
            return 0.0
        return self.backoff.next_delay()  # 4503, 1006, 1011, anything else

    async def _diagnose(self, status: int) -> float:
        """A refused handshake: ask the HTTP API why, never loop on dead credentials."""
        self.stats.refusals += 1
        logger.info("handshake refused (HTTP %s); asking the API why", status)
        try:
            await self.api.me()  # refreshes once on token_expired
        except CredentialsRejected:
            raise
        except NetworkError:
            return self.backoff.next_delay()
        except AuthSocketError as exc:
            if not exc.transient:
                raise
            return self._retry_wait(exc)
        if self.stats.refusals > self.max_refusals:
            raise ConnectionStopped(
                "handshake_refused",
                f"refused {self.stats.refusals} times although the credentials work",
            )
        return self.backoff.next_delay()

    def _retry_wait(
        self, exc: AuthSocketError, backoff: Backoff | None = None
    ) -> float:
        """The wait after a transient API error: backoff (the connection's
        unless given), and at least what its `Retry-After` asked, up to
        `max_retry_wait`. Waiting longer is what a background loop must not
        do: nobody would see it stalled."""
        backoff = self.backoff if backoff is None else backoff
        asked = exc.retry_after
        if asked is None or not asked >= 0:  # none, NaN or negative: not asked
            return backoff.next_delay()
        if asked > self.max_retry_wait:  # `inf` as well
            if not self._retry_capped:
                self._retry_capped = True
                logger.warning(
                    "the server answered %s with Retry-After %s s; "
                    "retrying after max_retry_wait (%s s) instead",
                    exc.code,
                    asked,
                    self.max_retry_wait,
                )
            asked = self.max_retry_wait
        return backoff.next_delay(asked)

    async def _stop(self, error: AuthSocketError | None) -> None:
        if self._stopped.is_set():
            return
        self.error = error
        self._stopped.set()
        self._set_state(State.STOPPED, error.code if error else "closed")
        ws = self._ws
        if ws is not None:
            await ws.close()
        self._detach()
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._events.put_nowait(_STOP)

    def _set_state(self, state: str, reason: str) -> None:
        self.state = state
        if self.on_state is not None:
            self.on_state(state, reason)

    # --- token renewal in band --------------------------------------------------

    async def _renewer(self, ws: ClientConnection) -> None:
        """Renew at `renew_at` of the token's life, or when the server warns.

        An error it does not expect stops the socket, as one on the reader
        would: ended silently, the renewer would leave the connection to
        run out of token (4401) with nobody told why.
        """
        try:
            await self._renew_forever(ws)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._crash(exc)

    async def _renew_forever(self, ws: ClientConnection) -> None:
        while True:
            tokens = self._tokens
            if tokens is None:
                return  # set before this task starts: only after a detach
            await self._renewal_due(tokens)
            try:
                await self._renew(ws, tokens)
            except CredentialsRejected as exc:
                self._stopper = asyncio.create_task(self._stop(exc))
                return
            except Disconnected:
                return
            except AuthSocketError as exc:
                logger.info("token renewal failed (%s); retrying", exc.code)
                await asyncio.sleep(max(1.0, min(5.0, tokens.remaining() / 4)))

    async def _renewal_due(self, tokens: Tokens) -> None:
        """Wait until `tokens` is due: at `renew_at` of its life, or warned of.

        A warning of an `exp` earlier than the connection's came while a
        renewal was in flight (`auth.expiring` and our `auth` crossed): that
        renewal answered it, and renewing for it again would refresh twice
        (spending the new refresh token for nothing). It is dropped.
        """
        while True:
            wait = tokens.remaining() - tokens.lifetime * (1 - self.renew_at)
            if wait <= 0:
                break
            try:
                await asyncio.wait_for(self._expiring.wait(), wait)
            except TimeoutError:
                break
            self._expiring.clear()
            if not self._warning_answered():
                return
        self._expiring.clear()

    def _warning_answered(self) -> bool:
        """The last `auth.expiring` was of an `exp` the connection has left."""
        warned, current = self._warned_of, self._expires_at
        return warned is not None and current is not None and warned < current

    async def _renew(self, ws: ClientConnection, tokens: Tokens) -> None:
        fresh = await self.api.fresh_tokens(
            min_remaining=tokens.remaining() + 1.0, not_this=tokens.access
        )
        try:
            answer = await self._request({"type": "auth", "token": fresh.access}, ws=ws)
        except FrameError as exc:
            if exc.code != "invalid_token":
                raise
            # Another session's token (signed in again): only a new socket takes it.
            await ws.close()
            raise Disconnected("reconnecting with a token of another session") from exc
        self._tokens, self._expires_at = fresh, _exp(answer)
        self.stats.renewals += 1

    # --- frames -----------------------------------------------------------------

    async def _request(
        self,
        frame: dict[str, Any],
        *,
        timeout: float | None = None,
        ws: ClientConnection | None = None,
    ) -> dict[str, Any]:
        ws = ws or self._ws
        if ws is None:
            raise Disconnected("not connected")
        ref = next(self._refs)
        text = strict_json({**frame, "ref": ref})
        future = _future()
        self._pending[ref] = _Pending(future)
        try:
            await ws.send(text)
        except websockets.ConnectionClosed:
            self._pending.pop(ref, None)
            raise Disconnected() from None
        limit = timeout or self.request_timeout
        try:
            return await asyncio.wait_for(asyncio.shield(future), limit)
        except TimeoutError:
            # Typed, so `except AuthSocketError` holds, and the renewer, which
            # retries on those, is not ended by an `auth` answered late.
            raise NetworkError(f"no answer to {frame['type']} in {limit} s") from None
        finally:
            self._pending.pop(ref, None)

    def _settle(
        self, frame: dict[str, Any], error: Exception | None = None
    ) -> _Pending | None:
        ref = frame.get("ref")
        pending = self._pending.pop(ref, None) if isinstance(ref, int) else None
        if pending is None:
            return None
        if error is None:
            _resolve(pending.future, frame)
        else:
            _fail(pending.future, error)
        return pending

    def _entry(self, frame: dict[str, Any]) -> _Stream | None:
        """The subscription a frame's `stream` names, if we hold one."""
        stream = frame.get("stream")
        return self._streams.get(stream) if isinstance(stream, str) else None

    def _subscribe_frame(self, entry: _Stream) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "subscribe", "stream": entry.name}
        if entry.position is not None and entry.history:
            frame["since"] = entry.position
        if entry.presence:
            frame["presence"] = True
        return frame

    async def _on_frame(self, ws: ClientConnection, raw: str | bytes) -> None:
        try:
            frame = json.loads(raw)
        except (ValueError, RecursionError):  # too deep for the parser, too
            logger.warning("ignored a frame that is not JSON")
            return
        if not isinstance(frame, dict):
            return
        kind = frame.get("type")
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            self._settle(frame)
        elif not self._hold(frame):
            await handler(self, ws, frame)

    def _hold(self, frame: dict[str, Any]) -> bool:
        """Keep a frame back while its stream's earlier ids are still to come.

        Only `user` holds (`_Stream.held`): its messages from `welcome` until
        the resubscribe with `since` is answered, then, while a fill reads
        the ids a `reset` skipped, its messages, truncations and answers,
        so that each is handled after what precedes it.
        """
        kind, entry = frame.get("type"), self._entry(frame)
        if kind not in HELD_KINDS or entry is None or entry.held is None:
            return False
        if kind == "subscribed" and not entry.answered:
            return False  # the answer that tells whether to fill
        if kind == "message" and entry.first_here is None and is_id(frame.get("id")):
            entry.first_here = frame["id"]
        entry.held.append(frame)
        return True

    async def _on_welcome(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self.welcome = frame
        self.protocol = frame.get("protocol")
        self._expires_at = _exp(frame)
        self.stats.connects += 1
        self.stats.refusals = 0
        self._retry_capped = False
        for entry in list(self._streams.values()):
            entry.delivered_here = None  # a new socket: the server's marks are new
            _unhold(entry)
            if entry.name == USER_STREAM and entry.position is not None:
                entry.held = []  # live already: wait for the answer to `since`
            # `user` is subscribed by the server itself, without a `subscribed`
            # frame: asking anyway (never doubled) tells its `last_id`, so a
            # drop before its first message still resumes with `since`.
            entry.resyncing = False
            self._enqueue(entry)
        await self._pump()
        self._live.set()
        self._set_state(State.LIVE, "welcome")

    async def _on_subscribed(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        entry = self._entry(frame)
        since = self._sent_since(frame)
        skipped: tuple[int, int] | None = None
        first = entry is not None and entry.held is not None and not entry.answered
        if entry is not None:
            entry.resyncing = False
            entry.answered = True
            last_id = frame.get("last_id")
            if frame.get("reset"):
                # Our position is past the end (a restored database) or pruned.
                # Resume from what the server holds, so a drop before the next
                # message still resubscribes with `since`; the first id after
                # a reset may skip some, and that is no gap.
                self.stats.resets += 1
                entry.reset = True
                if is_id(last_id) and last_id < (entry.position or 0):
                    entry.position = last_id
                if first:
                    skipped = self._reset_on_user(entry, since)
            elif is_id(last_id) and (entry.position is None or not entry.history):
                # Sent without `since` (nothing seen yet, or a kind without
                # history followed again from now): exactly the ids after
                # `last_id` follow, so those before it are no gap.
                entry.position = max(entry.position or 0, last_id)
            if entry.presence:
                entry.view = entry.view or PresenceView(entry.name)
        pending = self._settle(frame)
        if pending is not None and pending.subscribe is not None:
            self._release(pending.subscribe)
            self._pause.reset()
            _resolve(pending.subscribe.future, frame)
            await self._pump()
        if entry is not None and first:
            if skipped is None:
                await self._let_go(entry)
            else:
                entry.fill = asyncio.create_task(self._fill(ws, entry, *skipped))

    def _sent_since(self, frame: dict[str, Any]) -> int | None:
        """The `since` of the subscribe this `subscribed` answers, if any."""
        ref = frame.get("ref")
        pending = self._pending.get(ref) if isinstance(ref, int) else None
        item = pending.subscribe if pending is not None else None
        return item.since if item is not None else None

    def _reset_on_user(
        self, entry: _Stream, since: int | None
    ) -> tuple[int, int] | None:
        """A `reset` answering the connection's resubscribe of `user`.

        The server sent live ids before it read that subscribe, from
        `first_here` on; they wait in `held`, and come next. When `since`
        was under the one before it, the ids in between can no longer come
        on this socket, and are read over HTTP: answers that range, ends
        excluded. Otherwise (a position past the end, say) nothing is.
        """
        first_here = entry.first_here
        if first_here is None:
            return None
        if entry.position is not None:
            entry.position = min(entry.position, first_here - 1)
        if since is None or since + 1 >= first_here:
            return None
        return since, first_here

    async def _on_message(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        try:
            message = Message.from_frame(frame)
        except ValueError as exc:
            logger.warning("ignored %s", exc)
            return
        entry = self._streams.get(message.stream)
        if entry is None:
            if message.stream != USER_STREAM:
                return  # in flight when we unsubscribed
            entry = self._streams[USER_STREAM] = _Stream(USER_STREAM)
        if entry.resyncing and not message.replay:
            return  # after truncation the resubscribe replays it, in order
        if entry.position is not None:
            if message.id <= entry.position:
                self.stats.duplicates[message.stream] += 1
                logger.warning(
                    "duplicate message %s #%s dropped (already at #%s)",
                    message.stream,
                    message.id,
                    entry.position,
                )
                return
            if message.id > entry.position + 1 and not entry.reset:
                self.stats.gaps[message.stream] += message.id - entry.position - 1
                logger.warning(
                    "gap in %s: #%s after #%s",
                    message.stream,
                    message.id,
                    entry.position,
                )
        entry.position = entry.delivered_here = message.id
        entry.reset = False
        self._events.put_nowait(message)

    async def _on_replay_truncated(
        self, ws: ClientConnection, frame: dict[str, Any]
    ) -> None:
        entry = self._entry(frame)
        if entry is None:
            return
        next_since = frame.get("next_since")
        if is_id(next_since):
            entry.position = max(entry.position or 0, next_since)
        entry.resyncing = True
        self._enqueue(entry)
        await self._pump()

    async def _on_presence(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        if frame.get("type") == "presence" and self._settle(frame) is not None:
            return  # the answer to presence_snapshot()
        entry = self._entry(frame)
        if entry is None or not entry.presence:
            return
        entry.view = entry.view or PresenceView(entry.name)
        event = entry.view.apply(frame)
        if event is not None:
            self._events.put_nowait(event)

    async def _on_unsubscribed(
        self, ws: ClientConnection, frame: dict[str, Any]
    ) -> None:
        stream = frame.get("stream")
        answered = self._settle(frame) is not None  # our own unsubscribe
        if not answered and frame.get("reason") and isinstance(stream, str):
            self._streams.pop(stream, None)
            self._events.put_nowait(Unsubscribed(stream, str(frame["reason"])))

    async def _on_error(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        error = FrameError(str(frame.get("code")), str(frame.get("detail") or ""))
        pending = self._settle(frame, error)
        if pending is None:
            logger.warning("server error frame: %s", error)
        elif pending.subscribe is not None:
            await self._subscribe_refused(pending.subscribe, error)

    # --- the `user` ids a `reset` skipped --------------------------------------

    async def _fill(
        self, ws: ClientConnection, entry: _Stream, after: int, before: int
    ) -> None:
        """Hand on the `user` ids after `after` and under `before`, read over
        HTTP (still stored, docs/protocol.md §4.2), then what was held.

        Runs beside the reader, which holds `user` meanwhile. An error it
        does not expect stops the socket, as one on the reader would.
        """
        try:
            await self._fill_then_let_go(ws, entry, after, before)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._crash(exc)

    def _crash(self, exc: Exception) -> None:
        """Stop the socket, loudly, for an error of a task beside the reader
        (a bug of ours, a store that cannot save): never left to die alone."""
        logger.exception("authsocket client stopped by an unexpected error")
        error = AuthSocketError("client_error", repr(exc))
        self._stopper = asyncio.create_task(self._stop(error))

    async def _fill_then_let_go(
        self, ws: ClientConnection, entry: _Stream, after: int, before: int
    ) -> None:
        """Dead credentials stop the socket, as on any call of it. Any other
        failure, once its tries are spent, gives the ids left up, loudly: a
        warning, and the skip counted in `stats.gaps` when the next id comes.
        Either way what was held then goes on: the stream never stalls."""
        try:
            await self._fill_pages(ws, entry, after, before)
            self.stats.fills += 1
        except CredentialsRejected as exc:
            self._stopper = asyncio.create_task(self._stop(exc))
            return
        except AuthSocketError as exc:
            logger.warning(
                "user ids after #%s could not be read after a reset (%s); "
                "those under #%s are skipped",
                entry.position,
                exc.code,
                before,
            )
            entry.reset = False  # the next id counts the skip as a gap
        entry.fill = None
        await self._let_go(entry)

    async def _fill_pages(
        self, ws: ClientConnection, entry: _Stream, after: int, before: int
    ) -> None:
        """Page through the history from `after`, handing on ids under `before`.

        Handed on as replayed messages, through the checks of live ones:
        an id the caller has already is dropped, the position moves on.
        """
        while after + 1 < before:
            page = await self._fill_page(after)
            newer = sorted(
                (m for m in page if isinstance(m, dict) and is_id(m.get("id"))),
                key=lambda m: m["id"],
            )
            newer = [m for m in newer if m["id"] > after]
            for item in newer:
                if item["id"] >= before:
                    return
                await self._on_message(
                    ws, {**item, "stream": entry.name, "replay": True}
                )
            if len(page) < FILL_PAGE or not newer:
                return
            after = newer[-1]["id"]

    async def _fill_page(self, after: int) -> list[Any]:
        """One page of `user` after `after`; transient errors are tried
        again after the socket's backoff, or the `Retry-After` asked for
        (at most `max_retry_wait`), `FILL_TRIES` times in all."""
        backoff = Backoff(base=self.backoff.base, cap=self.backoff.cap)
        tries = 0
        while True:
            tries += 1
            try:
                page = await self.api.stream_messages(
                    USER_STREAM, after=after, limit=FILL_PAGE
                )
                if not isinstance(page, list):
                    raise AuthSocketError("bad_response", "history that is no list")
                return page
            except AuthSocketError as exc:
                if not exc.transient or tries >= FILL_TRIES:
                    raise
                logger.info("reading user ids failed (%s); retrying", exc.code)
                await asyncio.sleep(self._retry_wait(exc, backoff))

    async def _let_go(self, entry: _Stream) -> None:
        """Handle what `entry` held, in order, then hold no more. Frames that
        arrive meanwhile join the same list, behind, so order still holds."""
        held, ws = entry.held, self._ws
        while held and entry.held is held and ws is not None and self._ws is ws:
            frame = held.pop(0)
            await _HANDLERS[frame["type"]](self, ws, frame)
        if entry.held is held:
            entry.held = None

    # --- the subscribe queue ----------------------------------------------------

    async def _subscribe(self, entry: _Stream, timeout: float | None) -> dict[str, Any]:
        """The caller's subscribe, through the queue; answers `subscribed`."""
        if self._ws is None:
            raise Disconnected("not connected")
        future = _future()
        self._enqueue(entry, future, timeout)
        # Sent from a task of its own: a caller cancelled mid-send must not
        # leave a slot taken by a frame that never went out.
        pump = asyncio.create_task(self._pump())
        self._pumps.add(pump)
        pump.add_done_callback(self._pumps.discard)
        return await future

    def _enqueue(
        self,
        entry: _Stream,
        future: asyncio.Future | None = None,
        timeout: float | None = None,
    ) -> None:
        item = _Subscribe(
            entry, next(self._order), future, timeout or self.request_timeout
        )
        heapq.heappush(self._queue, (item.order, item))

    def _unqueue(self, stream: str) -> None:
        """Drop the queued subscribes of `stream`; their callers get an error."""
        kept = []
        for order, item in self._queue:
            if item.entry.name == stream:
                _fail(item.future, _unsubscribed(stream))
            else:
                kept.append((order, item))
        heapq.heapify(kept)
        self._queue = kept

    async def _pump(self) -> None:
        """Send queued subscribes while a slot is free and no pause holds the queue.

        The frame is built when sent, from the stream's state then. A slot is
        taken before the send, so concurrent runs never exceed the limit.
        """
        ws = self._ws
        while (
            ws is not None
            and self._ws is ws
            and self._queue
            and self._paused is None
            and len(self._in_flight) < SUBSCRIBES_IN_FLIGHT
        ):
            _, item = heapq.heappop(self._queue)
            entry = item.entry
            if self._streams.get(entry.name) is not entry:
                _fail(item.future, _unsubscribed(entry.name))
                continue  # unsubscribed, or ended by the server, meanwhile
            ref = next(self._refs)
            self._pending[ref] = _Pending(None, subscribe=item)
            self._in_flight.add(item)
            item.timer = asyncio.get_running_loop().call_later(
                item.timeout, self._unanswered, item
            )
            frame = self._subscribe_frame(entry)
            item.since = frame.get("since")
            try:
                await ws.send(json.dumps({**frame, "ref": ref}))
            except websockets.ConnectionClosed:
                return  # the reader sees the close; detaching fails the rest

    def _release(self, item: _Subscribe) -> None:
        if item.timer is not None:
            item.timer.cancel()
            item.timer = None
        self._in_flight.discard(item)

    def _unanswered(self, item: _Subscribe) -> None:
        """No answer in time: the slot is freed; a late answer is still handled."""
        item.timer = None
        self._in_flight.discard(item)
        _fail(item.future, NetworkError(f"no answer to subscribe in {item.timeout} s"))
        self._background(self._pump())
        entry = item.entry
        if entry.held is not None and not entry.answered:
            # No answer to tell whether ids were skipped: take what came.
            entry.answered = True
            self._background(self._let_go(entry))

    def _background(self, work) -> None:
        """Run `work` off the reader, as long as the connection lasts."""
        task = asyncio.create_task(work)
        self._pumps.add(task)
        task.add_done_callback(self._pumps.discard)

    async def _subscribe_refused(self, item: _Subscribe, error: FrameError) -> None:
        self._release(item)
        entry = item.entry
        held = self._streams.get(entry.name) is entry
        if error.transient:
            # `rate_limited` says "not now", nothing about the stream: it goes
            # back in its place, and the queue waits for the budget to refill.
            self.stats.rate_limited += 1
            heapq.heappush(self._queue, (item.order, item))
            if self._paused is None:
                self._paused = asyncio.create_task(
                    self._resume(self._pause.next_delay())
                )
            return
        if item.future is not None:
            _fail(item.future, error)  # the caller decides (subscribe())
        elif (
            held
            and error.code == "bad_request"
            and entry.history
            and entry.position is not None
        ):
            # A kind without history numbers its messages but refuses `since`
            # (docs/protocol.md §8): follow it again from now, not lose it.
            entry.history = False
            heapq.heappush(self._queue, (item.order, item))
        elif held:
            # Only a permanent refusal ends a stream the caller never gave up.
            del self._streams[entry.name]
            self._events.put_nowait(Unsubscribed(entry.name, error.code))
        await self._pump()

    async def _resume(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._paused = None
        await self._pump()

    async def _on_auth_expiring(
        self, ws: ClientConnection, frame: dict[str, Any]
    ) -> None:
        self._warned_of = _exp(frame)
        self._expiring.set()


_HANDLERS = {
    "welcome": AuthSocket._on_welcome,
    "subscribed": AuthSocket._on_subscribed,
    "message": AuthSocket._on_message,
    "replay.truncated": AuthSocket._on_replay_truncated,
    "presence": AuthSocket._on_presence,
    "presence.join": AuthSocket._on_presence,
    "presence.leave": AuthSocket._on_presence,
    "unsubscribed": AuthSocket._on_unsubscribed,
    "error": AuthSocket._on_error,
    "auth.expiring": AuthSocket._on_auth_expiring,
}


def _future() -> asyncio.Future:
    future = asyncio.get_running_loop().create_future()
    # An answer nobody awaits any more must not warn when it fails.
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
    return future


def _resolve(future: asyncio.Future | None, value: Any) -> None:
    if future is not None and not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future | None, error: Exception) -> None:
    if future is not None and not future.done():
        future.set_exception(error)


def _unsubscribed(stream: str) -> AuthSocketError:
    return AuthSocketError(
        "unsubscribed", f"{stream} was unsubscribed before its subscribe was sent"
    )


def _exp(frame: dict[str, Any]) -> int | None:
    """A frame's `expires_at` (`welcome`, `auth.ok`, `auth.expiring`), if sound."""
    expires_at = frame.get("expires_at")
    return expires_at if is_id(expires_at) else None


def _unhold(entry: _Stream) -> None:
    """Forget what `entry` held for a connection, and end its fill."""
    if entry.fill is not None:
        entry.fill.cancel()
    entry.fill, entry.held, entry.answered, entry.first_here = None, None, False, None


def _resumed(delivered_here: int | None, since: int) -> int:
    """Where a stream resumes when the caller subscribes with `since`.

    Never below what this connection delivered: the server never sends an id
    twice on a socket (§4.2), so it would replay nothing below its own mark,
    and the next live id would look like a gap. Nothing delivered yet on this
    socket (the `user` stream after connect, a stream only subscribed): the
    replay from `since` comes, as asked.
    """
    return since if delivered_here is None else max(delivered_here, since)


async def _idle() -> None:
    """No renewal: the token runs out, the server closes 4401, we reconnect."""


class _connect(connect):
    """websockets' `connect`, which follows redirects, but never to another
    host: the handshake carries the access token (header, subprotocol), and
    websockets sends the same headers and subprotocols after a redirect.
    Within the host, only to the same port or from ws:// up to wss://
    (websockets itself refuses a downgrade). Not followed, the redirect is
    a refused handshake, as is one websockets cannot follow: a `Location`
    it cannot parse (`#x`, `http://…`, a bad port) raises there, quoting
    the URL, which by then holds a ticket or a token."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        try:
            target = super().process_redirect(exc)
        except (websockets.InvalidURI, ValueError):
            return exc
        if not isinstance(target, str):
            return exc  # a downgrade to ws://, say: its message quotes the URL
        old, new = parse_uri(self.uri), parse_uri(target)
        upgrade = new.secure and not old.secure
        if new.host != old.host or (new.port != old.port and not upgrade):
            return exc
        return target


def _ws_url(http_url: str) -> str:
    parts = urlsplit(http_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws/", "", ""))


def _checked_ws_url(url: str) -> str:
    """The URL, refused now if websockets would refuse it: its InvalidURI
    quotes the whole URL, which by then holds a ticket or a token."""
    try:
        parse_uri(url)
    except websockets.InvalidURI as exc:
        raise ValueError(f"not a ws:// or wss:// URL: {exc}") from None
    return url


def _with_query(url: str, name: str, value: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{name}={quote(value, safe='')}"
