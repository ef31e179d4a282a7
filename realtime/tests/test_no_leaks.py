"""No socket leaves anything behind in this process, however it ends.

Everything this process keeps per socket, user, session or stream (the
registry of its sockets, the registry of live sockets and its store,
the presence relay and outbox, the channel layer's channels and groups, the
session guard's pending lookups) and the open-sockets gauge must be back
where they were once the sockets are gone: a client with bad input must not
be able to grow them. Each test drives a few hundred sockets through every
way one ends, then compares them with what was held before.

The transport's own ends (a TCP connection dropped without a close frame,
invalid UTF-8, the transport's message-size limit) reach the application as
a `websocket.disconnect` like the ones sent here: tests/test_e2e_no_leaks.py
drives them through a real server and reads what it can see from outside.
"""

import asyncio
import contextlib
import threading
import time
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from accounts.revocation import session_revoke
from accounts.services import ticket_issue
from accounts.tokens import encode_access
from realtime import channels_overrides
from realtime.broadcast import agroup_send
from realtime.channels_redis_overrides import ResilientRedisChannelLayer
from realtime.connections import registry as sockets
from realtime.groups import user_group
from realtime.presence import broadcast, registry_get, registry_reset
from realtime.presence.broadcast import presence_flush, registry_started
from realtime.presence.redis_store import redis_client
from realtime.presence.relay import relay_for
from realtime.protocol import SessionEvent
from realtime.session_guard import guard
from realtime.tests.conftest import TIMEOUT, db, send, subscribe, watch
from realtime.tests.sockets import close_code, welcomed
from tests.metrics import value
from tests.services import require_redis

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

ROUNDS = 25  # each round runs every sequential path once
BATCH = 12  # sockets closed at once by one expiry, or by revocations
QUEUED = 3  # messages waiting for a socket when its disconnect is read


def held() -> dict[str, object]:
    """What this process holds per socket, user, session and stream, by owner.

    Private attributes, read only here: none has a public count, and a leak
    is an entry nobody removes. Left out on purpose: a stream's presence
    version (`MemoryStore._versions`: versions keep increasing after a
    stream empties, as Redis keeps `pver` a day), the guard's verified
    sessions (a bounded cache of sessions, not of sockets) and its revoked
    ones (remembered for REVOKED_MEMORY seconds), and the relay's reader.
    """
    presence = registry_get()
    store = presence.store
    own = store._entries.get(presence.process_id)
    layer = get_channel_layer()
    relay = relay_for(layer)
    outbox = broadcast._outbox
    return {
        "open sockets (gauge)": value("authsocket_open_sockets"),
        "sockets": sockets.open_count(),
        "sockets by session": sorted(sockets._by_session),
        "sockets per user": dict(sockets._per_user),
        "registry sockets": sorted(presence._sockets),
        "registry streams by socket": sorted(presence._streams),
        "registry users by stream": dict(presence._here),
        "registry locks": sorted(presence._locks),
        "registry shared reads": sorted(presence._shared_reads),
        "store sockets": sorted(own.sockets) if own else [],
        "store subscriptions": sorted(own.streams) if own else [],
        "store users by stream": sorted(store._ids),
        "store listed": sorted(store._listed),
        "store parts": sorted(store._parts),
        "store joins": sorted(store._joined),
        "store sessions by user": dict(store._sessions),
        "relay watchers": {s: len(w) for s, w in relay._watchers.items()},
        "relay groups": sorted(relay._groups),
        "relay resyncs": sorted(relay._resyncing),
        "relay tasks": len(relay._tasks),  # its reader and refresher, once made
        "outbox": dict(outbox._pending) if outbox else {},
        "uncounted changes": dict(broadcast._uncounted),
        "layer queues": sorted(set(queues(layer)) - {relay.inbox}),
        "layer memberships": sorted(set(memberships(layer)) - {relay.inbox}),
        "guard lookups": sorted(guard._pending),
        "releases": len(channels_overrides._releases),
    }


def queues(layer) -> dict:
    """The layer's queue of each channel of this process that has one."""
    if isinstance(layer, ResilientRedisChannelLayer):
        return layer._inboxes
    return layer.channels


def memberships(layer) -> dict[str, set[str]]:
    """channel → the groups this process keeps it in."""
    if isinstance(layer, ResilientRedisChannelLayer):
        return layer._memberships
    kept: dict[str, set[str]] = {}
    for group, members in layer.groups.items():
        for channel in members:
            kept.setdefault(channel, set()).add(group)
    return kept


async def settled() -> dict[str, object]:
    """`held()` once the presence changes of the closes have gone out."""
    await presence_flush()
    return held()


async def ended(communicator, code: int = 1006) -> None:
    """The client is gone (daphne's `websocket.disconnect`); the consumer ends."""
    await communicator.send_input({"type": "websocket.disconnect", "code": code})
    await communicator.wait(TIMEOUT)


async def closed_with(communicator, code: int) -> None:
    got, _ = await close_code(communicator, TIMEOUT)
    assert got == code
    await ended(communicator, code)


async def until(condition, what: str) -> None:
    """Yield to the event loop until `condition()` holds, at most TIMEOUT s."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {TIMEOUT} s"
        await asyncio.sleep(0)


async def handed_over(communicator, frame: dict) -> None:
    """Send `frame`; return once the consumer has handed it to its handler."""
    kind = frame["type"]
    before = value("authsocket_frames_received_total", type=kind)
    await communicator.send_json_to(frame)
    await until(
        lambda: value("authsocket_frames_received_total", type=kind) > before,
        f"a {kind} frame handed to its handler",
    )


def queued(layer, channel: str) -> int:
    """Messages waiting in `channel`'s queue (0: it has none)."""
    queue = queues(layer).get(channel)
    return 0 if queue is None else queue.qsize()


@contextlib.asynccontextmanager
async def orm_thread_busy():
    """Another socket's slow query holds the one thread every socket's ORM work
    shares: what this socket asks of the database waits behind it."""
    started, release = threading.Event(), threading.Event()

    def slow_query():
        started.set()
        release.wait(TIMEOUT)

    query = asyncio.ensure_future(database_sync_to_async(slow_query)())
    await asyncio.to_thread(started.wait, TIMEOUT)
    try:
        yield
    finally:
        release.set()
        await asyncio.wait_for(query, TIMEOUT)


async def cancelled(communicator) -> None:
    """daphne's `--application-close-timeout`: the client left (its disconnect
    is queued), the application is still busy, so daphne cancels it."""
    await communicator.send_input({"type": "websocket.disconnect", "code": 1006})
    communicator.future.cancel()
    await asyncio.wait({communicator.future}, timeout=TIMEOUT)
    assert communicator.future.done()


class Paths:
    """Each way a socket ends, as one cycle; `tokens` are the user's session's."""

    def __init__(self, ws, user, tokens, settings):
        self.ws, self.user, self.tokens, self.settings = ws, user, tokens, settings

    async def welcomed(self, token: str | None = None):
        communicator = self.ws(f"token={token or self.tokens.access}")
        await welcomed(communicator)
        return communicator

    async def closed_normally(self):
        """Streams, presence on and off, unsubscribe, resubscribe, publish, close."""
        c = await self.welcomed()
        await watch(c, "room:lobby")
        await subscribe(c, "room:team")
        await send(c, {"type": "unsubscribe", "stream": "room:team"})
        await subscribe(c, "room:team", presence=True)
        assert (await c.receive_json_from(TIMEOUT))["type"] == "presence"
        await subscribe(c, "room:lobby")  # presence off
        await watch(c, "room:lobby")  # and on again
        await send(c, {"type": "unsubscribe", "stream": "room:team"})
        await send(c, {"type": "unsubscribe", "stream": "user"})
        answer = await send(c, {"type": "presence", "stream": "room:plaza"})
        assert answer["type"] == "presence"
        answer = await send(c, {"type": "subscribe", "stream": "room:secret"})
        assert answer["code"] == "forbidden"
        frame = {"type": "publish", "stream": "room:lobby", "data": {"n": 1}}
        assert (await send(c, frame))["type"] == "published"
        await c.disconnect()

    async def dropped(self):
        """The connection ends without a close frame: daphne says 1006."""
        c = await self.welcomed()
        await watch(c, "room:lobby")
        await subscribe(c, "room:team")
        await ended(c, 1006)

    async def dropped_with_frames_in_flight(self):
        c = await self.welcomed()
        await c.send_json_to({"type": "subscribe", "stream": "room:lobby"})
        frame = {"type": "subscribe", "stream": "room:team", "presence": True}
        await c.send_json_to(frame)
        await c.send_json_to({"type": "auth", "token": self.tokens.access})
        await c.send_json_to({"type": "presence", "stream": "room:plaza"})
        await ended(c, 1006)

    async def dropped_during_the_handshake(self):
        c = self.ws(f"token={self.tokens.access}")
        await c.send_input({"type": "websocket.connect"})
        await ended(c, 1006)

    async def refused_in_front_of_the_consumer(self):
        """The Origin check, then the JWT middleware's refusals (HTTP 403)."""
        access = self.tokens.access
        for query, headers in [
            ("", [("origin", "https://evil.example")]),
            ("", []),
            ("token=not-a-jwt", []),
            (f"token={access}&token={access}", []),
        ]:
            c = self.ws(query, headers=headers)
            connected, _ = await c.connect(TIMEOUT)
            assert not connected
            await ended(c)

    async def over_the_connection_limit(self):
        limit = self.settings.AUTHSOCKET_MAX_CONNECTIONS_PER_USER
        self.settings.AUTHSOCKET_MAX_CONNECTIONS_PER_USER = 2
        kept = [await self.welcomed(), await self.welcomed()]
        for c in kept:
            await watch(c, "room:lobby")
        c = self.ws(f"token={self.tokens.access}")
        connected, _ = await c.connect(TIMEOUT)
        assert connected
        await closed_with(c, 4409)
        for c in kept:
            await c.disconnect()
        self.settings.AUTHSOCKET_MAX_CONNECTIONS_PER_USER = limit

    async def flooding(self):
        rate = self.settings.AUTHSOCKET_FRAME_RATE
        self.settings.AUTHSOCKET_FRAME_RATE = "5/s"
        c = await self.welcomed()
        await watch(c, "room:lobby")
        for ref in range(40):
            await c.send_json_to({"type": "ping", "ref": ref})
        await closed_with(c, 4429)
        self.settings.AUTHSOCKET_FRAME_RATE = rate

    async def too_big(self):
        c = await self.welcomed()
        await watch(c, "room:lobby")
        await c.send_to(
            text_data="x" * (self.settings.AUTHSOCKET_MAX_MESSAGE_BYTES + 1)
        )
        await closed_with(c, 4413)

    async def binary(self):
        c = await self.welcomed()
        await watch(c, "room:lobby")
        await c.send_to(bytes_data=b"\x00")
        await closed_with(c, 4415)

    def sequential(self):
        return [
            self.closed_normally,
            self.dropped,
            self.dropped_with_frames_in_flight,
            self.dropped_during_the_handshake,
            self.refused_in_front_of_the_consumer,
            self.over_the_connection_limit,
            self.flooding,
            self.too_big,
            self.binary,
        ]

    async def expired(self):
        """A socket whose token expires (4401), on a stream with presence."""
        token, _ = encode_access(
            user_id=self.user.pk, sid=self.tokens.session.sid, ttl=1
        )
        c = await self.welcomed(token)
        frame = {"type": "subscribe", "stream": "room:lobby", "presence": True}
        await c.send_json_to(frame)
        await closed_with(c, 4401)

    async def revoked(self, open_session):
        """A session revoked with two sockets on it, one with a frame in flight."""
        tokens = await db(open_session, self.user)
        both = [await self.welcomed(tokens.access), await self.welcomed(tokens.access)]
        for c in both:
            await watch(c, "room:lobby")
        frame = {"type": "subscribe", "stream": "room:team", "presence": True}
        await both[0].send_json_to(frame)
        assert await db(session_revoke, session=tokens.session, reason="test")
        for c in both:
            await closed_with(c, 4403)


@pytest.fixture
def channel_layer(request, settings) -> str:
    """The in-memory layer, or with `indirect` parametrization "redis" (production's)."""
    kind = getattr(request, "param", "memory")
    if kind == "redis":
        request.applymarker(pytest.mark.services)
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "realtime.channels_redis_overrides.ResilientRedisChannelLayer",
                "CONFIG": {
                    "hosts": [require_redis()],
                    "prefix": f"authsocket-test-{uuid.uuid4().hex[:8]}",
                },
            }
        }
    return kind


@pytest.fixture
async def paths(channel_layer, ws, alice, rooms, open_session, settings):
    """The paths, after one socket came and went (what is made once is made)."""
    made = Paths(ws, alice, await db(open_session, alice), settings)
    c = await made.welcomed()
    await watch(c, "room:lobby")
    await c.disconnect()
    return made


async def test_every_way_a_socket_ends_leaves_nothing_behind(
    paths, open_session, settings
):
    settings.AUTHSOCKET_LEEWAY = 0  # an expiring token closes at its `exp`
    before = await settled()
    for _ in range(ROUNDS):
        for path in paths.sequential():
            await path()
    await asyncio.gather(*(paths.expired() for _ in range(BATCH)))
    await asyncio.gather(*(paths.revoked(open_session) for _ in range(BATCH)))
    assert await settled() == before


async def test_a_socket_cancelled_with_a_frame_in_flight_leaves_nothing_behind(
    paths, alice
):
    """daphne cancels an application that has not ended 10 s after its client
    left: here each socket's frame waits on the ORM thread, held by a slow
    query, when its client goes. Its state is released all the same."""
    frames = [
        {"type": "subscribe", "stream": "room:team", "presence": True},
        {"type": "subscribe", "stream": "room:team", "since": 0},
        {"type": "publish", "stream": "room:lobby", "data": {"n": 1}},
        {"type": "presence", "stream": "room:plaza"},
    ]
    before = await settled()
    for _ in range(ROUNDS):
        for frame in frames:
            c = await paths.welcomed()
            await watch(c, "room:lobby")
            async with orm_thread_busy():
                await handed_over(c, frame)
                await cancelled(c)
        # A handshake waiting on the database (its ticket) when cancelled.
        ticket, _ = await db(
            ticket_issue,
            session=paths.tokens.session,
            access_expires_at=int(time.time()) + 60,
        )
        async with orm_thread_busy():
            c = paths.ws(f"ticket={ticket}")
            await c.send_input({"type": "websocket.connect"})
            await cancelled(c)
    assert await settled() == before
    assert sockets.count(alice.pk) == 0


async def revoked_elsewhere(user_id: int) -> None:
    """Another session of the user was revoked: an event to all his sockets."""
    event = {
        "type": SessionEvent.REVOKED.value,
        "sids": [uuid.uuid4().hex],
        "revoked_at": time.time(),
    }
    assert await agroup_send(user_group(user_id), event, fallback="test")


@pytest.mark.parametrize("channel_layer", ["memory", "redis"], indirect=True)
async def test_a_socket_that_ends_with_messages_queued_leaves_no_queue_behind(
    paths, alice, channel_layer
):
    """The messages that came with its disconnect are never read: the consumer
    stops at the disconnect. Those queued behind it, and those still on their
    way, go with the socket."""
    layer = get_channel_layer()
    before = await settled()
    for _ in range(ROUNDS):
        c = await paths.welcomed()
        (socket,) = sockets.of_session(paths.tokens.session.sid)
        channel = socket.channel_name
        async with orm_thread_busy():  # the subscribe waits on it
            await handed_over(c, {"type": "subscribe", "stream": "room:team"})
            for _ in range(QUEUED):
                await revoked_elsewhere(alice.pk)
            # One is taken by the consumer's waiting receive; the rest wait.
            await until(
                lambda ch=channel: queued(layer, ch) >= QUEUED - 1, "messages queued"
            )
            await c.send_input({"type": "websocket.disconnect", "code": 1006})
        await c.wait(TIMEOUT)
        if channel_layer == "redis":
            # A group message sent before the socket left, read after it ended;
            # the process's messages arrive in order, so once the probe has,
            # it has been handled.
            await layer.send(channel, {"type": "sessions.revoked", "sids": []})
            probe = await layer.new_channel()
            await layer.send(probe, {"type": "probe"})
            assert (await asyncio.wait_for(layer.receive(probe), TIMEOUT)) == {
                "type": "probe"
            }
    assert await settled() == before


@contextlib.asynccontextmanager
async def redis_writes_paused(url: str):
    """Redis holds every client's writes (CLIENT PAUSE) until the block ends."""
    admin = redis_client(url)
    await admin.execute_command("CLIENT", "PAUSE", int(TIMEOUT * 1000), "WRITE")
    try:
        yield
    finally:
        await admin.execute_command("CLIENT", "UNPAUSE")
        await admin.aclose()


async def test_a_socket_cancelled_while_it_is_being_listed_is_not_left_listed(
    paths, settings
):
    """The registry's store write for a new socket waits on Redis, after the
    welcome: daphne may cancel the consumer right there. The socket is
    forgotten all the same, not counted in "connected now" for good."""
    url = require_redis()
    await registry_reset()
    settings.REDIS_URL = url
    live = await registry_started()  # its heartbeat written before the pause
    try:
        async with redis_writes_paused(url):
            c = await paths.welcomed()  # its entry's write now waits on Redis
            await cancelled(c)
        await until(lambda: not live._sockets, "the cancelled socket forgotten")
    finally:
        await registry_reset()


async def test_a_socket_cancelled_while_it_is_being_released_is_released_in_full(
    paths, alice, settings
):
    """The release itself waits on Redis (its presence leaves, one store write
    each) when daphne cancels the consumer: the cancel must not cut it short.
    Cut, the streams it had not left yet and its registry entry stay for the
    life of the process: a ghost in presence and in "connected now"."""
    url = require_redis()
    await registry_reset()
    settings.REDIS_URL = url
    live = await registry_started()
    streams = ["room:lobby", "room:plaza", "room:team"]
    try:
        c = await paths.welcomed()
        for stream in streams:
            await watch(c, stream)
        (socket,) = sockets.of_session(paths.tokens.session.sid)
        channel = socket.channel_name
        async with redis_writes_paused(url):
            await c.send_input({"type": "websocket.disconnect", "code": 1006})
            # Its registry entry is dropped just before the first leave's write.
            await until(lambda: channel not in live._sockets, "the release under way")
            c.future.cancel()  # daphne's --application-close-timeout
        await asyncio.wait({c.future}, timeout=TIMEOUT)
        assert c.future.done()
        await until(
            lambda: not any(s in live._here for s in streams) and not live._locks,
            "the release finished",
        )
        assert not live._sockets and not live._streams
        stored = await live.store.process_entries(live.process_id)
        assert (stored.sockets, stored.streams) == ({}, {})
        assert sockets.open_count() == 0 and sockets.count(alice.pk) == 0
    finally:
        await registry_reset()
