"""Subscribes are paced: a burst of them must never get the socket closed 4429.

The server refuses frames beyond its budget (`AUTHSOCKET_FRAME_RATE`: N a
second, bursts of 2N) and closes 4429 once more than N refusals are
outstanding (each accepted frame and each second forgive some). A client
holding more streams than a burst allows keeps at most
`SUBSCRIBES_IN_FLIGHT` subscribes unanswered, queues the rest in order, and
after a `rate_limited` answer holds the queue until the budget has refilled.

Against real daphne: subscribing many streams at once, and the reconnect
that subscribes them all again at `welcome`. Against a scripted server: the
window, the order, the pause, and what an unsubscribe or a close does to
subscribes still queued.
"""

import asyncio
import contextlib
import signal
import time

import pytest

from authsocket_client import (
    ApiClient,
    AuthSocketError,
    Disconnected,
    FrameError,
    PresenceEvent,
    Unsubscribed,
)
from authsocket_client.socket import SUBSCRIBES_IN_FLIGHT
from tests.client.conftest import FAST, PASSWORD, ScriptedServer, scripted_socket
from tests.servers import alice_rooms

pytestmark = [pytest.mark.e2e]

ROOMS = 120
# 20 frames a second, bursts of 40: the welcome's 121 subscribes (`user` and
# the rooms) are three bursts' worth, and more than 20 of them refused in a
# row closes the socket. 300 subscriptions allowed (the default is 100).
PACED = {"AUTHSOCKET_FRAME_RATE": "20/s", "AUTHSOCKET_MAX_SUBSCRIPTIONS": 300}


async def public_rooms(env: dict[str, str], count: int) -> list[str]:
    """Create `count` public rooms; their stream names."""
    slugs = [f"pace-{n:03d}" for n in range(count)]
    return await asyncio.to_thread(alice_rooms, env, slugs)


@contextlib.asynccontextmanager
async def alice_with_many_rooms(serve):
    """A server at 20 frames a second with ROOMS public rooms, and a socket of
    alice on it: (server, socket, the rooms' stream names)."""
    server = serve(**PACED)
    streams = await public_rooms(server.env, ROOMS)
    async with ApiClient(server.http) as api:
        await api.login("alice", PASSWORD)
        async with api.socket(**FAST) as socket:
            yield server, socket, streams


async def round_trip(socket) -> None:
    """A ping answered: whatever the server sent before it, a close included,
    has arrived. The subscribes just answered may have spent the socket's
    frame budget, so a `rate_limited` answer serves as well as a `pong`."""
    try:
        await socket.ping(timeout=10)
    except FrameError as error:
        assert error.code == "rate_limited", error


async def snapshots(socket, streams: list[str]) -> None:
    """Consume events until every stream in `streams` had a presence snapshot."""
    waiting = set(streams)
    async for event in socket.events():
        assert not isinstance(event, Unsubscribed), event
        if isinstance(event, PresenceEvent) and event.kind == "snapshot":
            waiting.discard(event.stream)
            if not waiting:
                return
    raise AssertionError(f"the socket stopped; no snapshot yet of {len(waiting)}")


async def test_subscribing_more_streams_than_a_burst_at_once_is_paced_not_closed(
    serve,
):
    async with alice_with_many_rooms(serve) as (server, socket, streams):
        async with asyncio.timeout(60):
            answers = await asyncio.gather(*(socket.subscribe(s) for s in streams))
        assert [(a["type"], a["stream"]) for a in answers] == [
            ("subscribed", s) for s in streams
        ]
        await round_trip(socket)  # any close would have come by now
        assert socket.live and socket.stats.closes == {}, socket.stats
        assert socket.stats.connects == 1
        # The server did refuse some: the queue waited, it was not luck.
        assert socket.stats.rate_limited > 0, socket.stats


async def test_a_reconnect_subscribes_more_streams_than_a_burst_again_without_4429(
    serve,
):
    """Every reconnect subscribes every held stream again at `welcome`; sent
    in one burst, more than N come back `rate_limited` and the server closes
    4429, on every reconnect. Paced, each stream is answered `subscribed`
    again (its presence snapshot follows that answer) on the one connection."""
    async with alice_with_many_rooms(serve) as (server, socket, streams):
        async with asyncio.timeout(60):
            await asyncio.gather(*(socket.subscribe(s, presence=True) for s in streams))
            await snapshots(socket, streams)
        refused_before = socket.stats.rate_limited

        await asyncio.to_thread(server.stop, signal.SIGTERM)  # drains: 4503
        await asyncio.to_thread(server.start)
        try:
            async with asyncio.timeout(30):
                await snapshots(socket, streams)
        except TimeoutError:
            pytest.fail(f"not every stream subscribed again: {socket.stats}")
        await round_trip(socket)
        assert socket.stats.closes == {4503: 1}, socket.stats
        assert socket.stats.connects == 2 and socket.live
        # The welcome's burst was refused in part, and paced.
        assert socket.stats.rate_limited > refused_before, socket.stats


# --- against a scripted server ---------------------------------------------------


def names(frames: list[tuple]) -> list[str]:
    return [frame["stream"] for _, frame, _ in frames]


async def test_at_most_eight_subscribes_are_in_flight_and_the_rest_follow_in_order():
    streams = [f"room:r{n:02d}" for n in range(20)]
    async with ScriptedServer() as server, scripted_socket(server) as socket:
        calls = [asyncio.create_task(socket.subscribe(s)) for s in streams]
        # `user` (subscribed at welcome) holds one of the slots.
        in_flight = await server.subscribes(SUBSCRIBES_IN_FLIGHT)
        order = names(in_flight)
        while in_flight:
            # The pong comes after anything the socket had sent before it.
            await socket.ping(timeout=5)
            assert server.frames.empty()  # never more than eight unanswered
            ws, frame, _ = in_flight.pop(0)
            await server.answer(ws, frame)
            if len(order) < len(streams) + 1:  # each answer lets one more out
                in_flight += await server.subscribes(1)
                order.append(in_flight[-1][1]["stream"])
        assert order == ["user", *streams]
        answers = await asyncio.wait_for(asyncio.gather(*calls), 5)
        assert [a["stream"] for a in answers] == streams


async def test_a_rate_limited_subscribe_holds_the_queue_then_goes_first_again():
    streams = [f"room:r{n:02d}" for n in range(12)]
    async with ScriptedServer() as server, scripted_socket(server) as socket:
        calls = [asyncio.create_task(socket.subscribe(s)) for s in streams]
        sent = await server.subscribes(SUBSCRIBES_IN_FLIGHT)
        (ws, user, _), (_, first, _), *others = sent
        await server.answer(ws, user)
        (_, eighth, _) = await server.next()  # in the slot `user` freed
        await server.refuse(ws, first, "rate_limited")
        refused_at = time.monotonic()
        # The others' answers free slots, but the queue is held.
        for _, frame, _ in [*others, (ws, eighth, 0)]:
            await server.answer(ws, frame)
        await socket.ping(timeout=5)
        assert server.frames.empty()
        # After the pause (1-2 s), the refused one goes out first.
        again = await server.subscribes(1 + len(streams) - 8)
        assert again[0][2] - refused_at >= 1.0
        assert names(again) == [first["stream"], *streams[8:]]
        assert again[0][1]["ref"] != first["ref"]
        for _, frame, _ in again:
            await server.answer(ws, frame)
        answers = await asyncio.wait_for(asyncio.gather(*calls), 5)
        assert [a["stream"] for a in answers] == streams
        assert socket.stats.rate_limited == 1 and socket.stats.closes == {}


async def test_unsubscribing_a_queued_stream_never_sends_its_subscribe():
    streams = [f"room:r{n:02d}" for n in range(10)]
    async with ScriptedServer() as server, scripted_socket(server) as socket:
        calls = [asyncio.create_task(socket.subscribe(s)) for s in streams]
        sent = await server.subscribes(SUBSCRIBES_IN_FLIGHT)
        queued = streams[SUBSCRIBES_IN_FLIGHT - 1 :]  # r07, r08, r09
        await socket.unsubscribe(queued[0], timeout=5)
        with pytest.raises(AuthSocketError) as dropped:
            await asyncio.wait_for(calls[7], 5)
        assert dropped.value.code == "unsubscribed"
        assert socket.position(queued[0]) is None
        for ws, frame, _ in sent:
            await server.answer(ws, frame)
        rest = await server.subscribes(2)
        assert names(rest) == queued[1:]
        for ws, frame, _ in rest:
            await server.answer(ws, frame)
        await asyncio.wait_for(asyncio.gather(*calls[:7], *calls[8:]), 5)
        await socket.ping(timeout=5)
        assert server.frames.empty()  # r07's subscribe never went out


async def test_a_close_fails_queued_subscribes_like_sent_ones_and_welcome_resends():
    """Queued or sent, a subscribe of a connection that closed raises
    Disconnected; the stream stays held, and the next welcome subscribes it."""
    streams = [f"room:r{n:02d}" for n in range(12)]
    async with ScriptedServer() as server, scripted_socket(server) as socket:
        calls = [asyncio.create_task(socket.subscribe(s)) for s in streams]
        await server.subscribes(SUBSCRIBES_IN_FLIGHT)
        await server.connections[0].close(1011)
        results = await asyncio.wait_for(
            asyncio.gather(*calls, return_exceptions=True), 5
        )
        assert all(isinstance(r, Disconnected) for r in results), results
        # The second connection subscribes `user` and all twelve, paced.
        again = []
        while len(again) < len(streams) + 1:
            ws, frame, _ = await server.next()
            assert ws is server.connections[1] and frame["type"] == "subscribe"
            again.append(frame["stream"])
            await server.answer(ws, frame)
        assert again == ["user", *streams]
        assert socket.stats.closes == {1011: 1}
