"""The process's presence relay: one inbox per process in each presence group.

Watchers on one process share one channel-layer member per stream; a batch is
received once and handed to each of them, after its snapshot when one is
being read (realtime/presence/relay.py, realtime/presence_frames.py).
"""

import asyncio
import logging
import time

import pytest
from autobahn.exception import Disconnected
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from realtime import channels_overrides
from realtime.presence import registry_get, relay
from realtime.presence.broadcast import change_frame, presence_flush
from realtime.presence.events import Change, PresenceChange, Resync, batch_event
from realtime.presence.relay import relay_for
from realtime.presence.store import clock_version
from realtime.presence_frames import StreamPresence
from realtime.publish import message_store
from realtime.streams import room_stream
from realtime.tests.conftest import TIMEOUT, send, subscribe
from realtime.tests.test_presence_frames import next_frame, user, watch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

LOBBY = "room:lobby"
QUIET = 0.3


def members(group: str) -> set[str]:
    """The channels in a group of the in-memory layer."""
    return set(get_channel_layer().groups.get(group, {}))


async def drain(*sockets) -> None:
    """Read what the sockets were told of each other so far."""
    await presence_flush()
    for socket in sockets:
        while not await socket.receive_nothing(timeout=0.05):
            await socket.receive_output(timeout=TIMEOUT)


async def until(check, timeout: float = TIMEOUT) -> None:
    """Wait, bounded, for state another task fills in (no event to await)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_one_member_per_process_however_many_sockets_watch(
    connect, alice, bob, carol, rooms
):
    group = room_stream("lobby").presence_group
    sockets = [await connect(u) for u in (alice, bob, carol)]
    for socket in sockets:
        await watch(socket, LOBBY)
    relay = relay_for(get_channel_layer())
    assert members(group) == {relay.inbox}
    assert relay.watching(LOBBY) == 3
    for socket in sockets:
        await send(socket, {"type": "unsubscribe", "stream": LOBBY})
    assert relay.watching(LOBBY) == 0
    assert members(group) == set()  # the last watcher took the inbox out


async def test_a_closed_socket_is_handed_nothing_more(connect, alice, bob, rooms):
    a, b = await connect(alice), await connect(bob)
    await watch(a, LOBBY)
    await watch(b, LOBBY)
    assert await next_frame(a) == {
        "type": "presence.join",
        "stream": LOBBY,
        "user": user(bob),
    }
    await a.disconnect()
    assert (await next_frame(b))["type"] == "presence.leave"
    assert relay_for(get_channel_layer()).watching(LOBBY) == 1


async def test_changes_arriving_while_the_snapshot_is_read_follow_it(
    connect, alice, bob, rooms, monkeypatch
):
    """Bob joins after alice's snapshot was read but before it was sent: his
    join must come after the snapshot (which does not list him), never
    before it, where the snapshot would then erase him from her view."""
    a, b = await connect(alice), await connect(bob)
    registry, relay = registry_get(), relay_for(get_channel_layer())
    join_read = registry.stream_join_read  # a watcher's first snapshot is read there

    async def read_then_bob_joins(socket_id, stream):
        answer = await join_read(socket_id, stream)
        await subscribe(b, LOBBY)
        await presence_flush()
        watcher = next(iter(relay._watchers[LOBBY]))
        await until(lambda: watcher.held.get(LOBBY))  # the relay handed it over
        return answer

    monkeypatch.setattr(registry, "stream_join_read", read_then_bob_joins)
    snapshot = await watch(a, LOBBY)
    monkeypatch.undo()
    assert [u["username"] for u in snapshot["users"]] == ["alice"]
    assert await next_frame(a) == {
        "type": "presence.join",
        "stream": LOBBY,
        "user": user(bob),
    }
    assert await a.receive_nothing(timeout=QUIET)


async def test_a_resync_while_the_snapshot_is_read_sends_another_after_it(
    connect, alice, bob, rooms, monkeypatch
):
    a, b = await connect(alice), await connect(bob)
    await subscribe(b, LOBBY)
    registry, relay = registry_get(), relay_for(get_channel_layer())
    join_read = registry.stream_join_read

    async def read_then_resync(socket_id, stream):
        answer = await join_read(socket_id, stream)
        monkeypatch.undo()
        group = room_stream("lobby").presence_group
        await get_channel_layer().group_send(group, Resync(LOBBY).event())
        watcher = next(iter(relay._watchers[LOBBY]))
        await until(lambda: watcher.held.get(LOBBY))
        return answer

    monkeypatch.setattr(registry, "stream_join_read", read_then_resync)
    first = await watch(a, LOBBY)
    fresh = await next_frame(a)
    assert fresh["type"] == "presence" and fresh["users"] == first["users"]
    assert "ref" not in fresh


async def test_the_inbox_stays_in_its_groups_past_the_layers_expiry(
    connect, alice, bob, rooms, monkeypatch
):
    """A layer drops a member `group_expiry` after it was added; a process
    outlives that, so the relay adds its inbox again in time."""
    layer = get_channel_layer()
    layer.group_expiry = 2  # re-added every second
    monkeypatch.setattr(channels_overrides, "SWEEP_INTERVAL", 0)  # expire promptly
    a, b = await connect(alice), await connect(bob)
    await watch(a, LOBBY)
    group, inbox = room_stream("lobby").presence_group, relay_for(layer).inbox
    added = layer.groups[group][inbox]
    await until(lambda: layer.groups[group].get(inbox, 0) >= added + 3)
    await subscribe(b, LOBBY)  # the send sweeps out whatever expired
    assert await next_frame(a) == {
        "type": "presence.join",
        "stream": LOBBY,
        "user": user(bob),
    }


async def test_messages_go_out_between_slices_of_a_presence_batch(
    connect, alice, bob, carol, rooms, monkeypatch
):
    """A batch told to many watchers is many sends; a message that arrives
    meanwhile must not wait for all of them (presence has its window to
    spare, a message does not). With a slice of zero the relay hands the
    loop back after every watcher: the message (a few turns of the loop from
    the layer to the socket) overtakes the batch for the watchers it had not
    reached yet."""
    monkeypatch.setattr(relay, "SLICE", 0)
    sockets = [await connect(u) for u in (alice, bob, carol) * 3]
    for socket in sockets:
        await watch(socket, LOBBY)
    await drain(*sockets)
    lobby = room_stream("lobby")
    published = await database_sync_to_async(message_store)(
        stream=lobby, sender=alice, data={"text": "hi"}
    )
    dave = PresenceChange(Change.JOIN, LOBBY, 10**6, "dave", clock_version(), "x")
    batch = batch_event(LOBBY, [dave], [change_frame(dave)])
    layer = get_channel_layer()
    await layer.group_send(lobby.presence_group, batch)  # the relay wakes first
    await layer.group_send(published.group, published.event)
    firsts = [(await next_frame(socket))["type"] for socket in sockets]
    assert "presence.join" in firsts and "message" in firsts, firsts
    for socket, first in zip(sockets, firsts, strict=True):  # each is told both
        second = "message" if first == "presence.join" else "presence.join"
        assert (await next_frame(socket))["type"] == second


async def test_a_batch_hidden_from_a_watcher_is_not_even_handed_to_it(
    connect, alice, bob, rooms, monkeypatch
):
    """Most watchers of a churning stream have nothing to look at in a batch:
    a leave ending a visit that began after their snapshots is marked hidden
    from them. The relay asks each watcher, without a coroutine, and hands
    the batch only to those it concerns; those still get every frame."""
    sockets = [await connect(alice), await connect(bob)]
    for socket in sockets:
        await watch(socket, LOBBY)
    await drain(*sockets)
    handed, arrived = [], StreamPresence.changes_arrived

    async def counted(self, event):
        handed.append(self.user.username)
        await arrived(self, event)

    monkeypatch.setattr(StreamPresence, "changes_arrived", counted)
    group, layer, now = (
        room_stream("lobby").presence_group,
        get_channel_layer(),
        clock_version(),
    )
    visit = PresenceChange(Change.LEAVE, LOBBY, 10**6, "dave", now + 2, "x", now + 1)
    hidden = visit.hidden(now + 1)
    await layer.group_send(group, batch_event(LOBBY, [hidden], [change_frame(hidden)]))
    erin = PresenceChange(Change.JOIN, LOBBY, 10**6 + 1, "erin", now + 3, "y")
    await layer.group_send(group, batch_event(LOBBY, [erin], [change_frame(erin)]))
    for socket in sockets:  # the hidden leave is no frame; the join is one
        frame = await next_frame(socket)
        assert (frame["type"], frame["user"]["username"]) == ("presence.join", "erin")
        assert await socket.receive_nothing(timeout=QUIET)
    assert sorted(handed) == ["alice", "bob"]  # the join only


async def test_a_socket_closing_under_a_batch_is_dropped_without_an_error(
    connect, alice, bob, rooms, caplog
):
    """The relay sends from its own task, so a socket's close can overtake a
    batch: daphne (through autobahn) then raises `Disconnected` on the send.
    That is no error to log: the socket stops watching and the others are
    told as usual. Any other failure of a send is still logged."""
    a, b = await connect(alice), await connect(bob)
    await watch(a, LOBBY)
    await watch(b, LOBBY)
    await drain(a, b)
    relay = relay_for(get_channel_layer())
    closing = next(w for w in relay._watchers[LOBBY] if w.user.pk == alice.pk)

    async def gone(**_):
        raise Disconnected("Attempt to send on a closed protocol")

    closing.socket.send = gone
    group, now = room_stream("lobby").presence_group, clock_version()
    dave = PresenceChange(Change.JOIN, LOBBY, 10**6, "dave", now + 1, "x")
    await get_channel_layer().group_send(
        group, batch_event(LOBBY, [dave], [change_frame(dave)])
    )
    assert (await next_frame(b))["user"]["username"] == "dave"
    await until(lambda: relay.watching(LOBBY) == 1)
    assert LOBBY not in closing.watched
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    async def broken(**_):
        raise ValueError("not a closing socket")

    b_watcher = next(iter(relay._watchers[LOBBY]))
    b_watcher.socket.send = broken
    erin = PresenceChange(Change.JOIN, LOBBY, 10**6 + 1, "erin", now + 2, "y")
    await get_channel_layer().group_send(
        group, batch_event(LOBBY, [erin], [change_frame(erin)])
    )
    await until(lambda: any(r.levelno == logging.ERROR for r in caplog.records))


async def test_resyncs_arriving_during_a_round_make_one_more_not_one_each(
    connect, alice, bob, carol, rooms, monkeypatch
):
    """A resync is a fresh snapshot for every watcher, read once per round;
    five in a row are at most two rounds (a burst of changes after a Redis
    restart must not become a burst of snapshots)."""
    sockets = [await connect(u) for u in (alice, bob, carol)]
    for socket in sockets:
        await watch(socket, LOBBY)
    await drain(*sockets)
    registry, reads = registry_get(), []
    read = registry.snapshot

    async def counted(stream, **kwargs):
        reads.append(stream)
        return await read(stream, **kwargs)

    monkeypatch.setattr(registry, "snapshot", counted)
    group = room_stream("lobby").presence_group
    for _ in range(5):
        await get_channel_layer().group_send(group, Resync(LOBBY).event())
    told = []
    for socket in sockets:
        frame = await next_frame(socket)
        assert frame["type"] == "presence" and len(frame["users"]) == 3
        told.append(1 + (not await socket.receive_nothing(timeout=QUIET)))
    assert max(told) <= 2, told
    assert len(reads) in (1, 2), reads


async def told(socket) -> set[str]:
    """The usernames a client would show after the frames it got so far."""
    shown: set[str] = set()
    while not await socket.receive_nothing(timeout=QUIET):
        frame = await next_frame(socket)
        if frame["type"] == "presence":
            shown = {u["username"] for u in frame["users"]}
        elif frame["type"] == "presence.join":
            shown.add(frame["user"]["username"])
        elif frame["type"] == "presence.leave":
            shown.discard(frame["user"]["username"])
    return shown


async def test_a_watcher_told_of_a_join_after_the_rounds_read_gets_a_newer_one(
    connect, alice, bob, carol, rooms, monkeypatch
):
    """Carol joins while a resync round's snapshot is being read. The
    watcher read for is in resync: her join waits behind its snapshot. The
    other is not yet: her join reaches it at once, and the round's snapshot,
    older than that, would erase her from its view; it must read again."""
    a, b, c = await connect(alice), await connect(bob), await connect(carol)
    for socket in (a, b):
        await watch(socket, LOBBY)
    await drain(a, b)
    registry, relay_ = registry_get(), relay_for(get_channel_layer())
    watchers = tuple(relay_._watchers[LOBBY])
    before = {w: w.watched[LOBBY].newest for w in watchers}
    read = registry.snapshot_shared

    async def read_then_carol_joins(stream, render):
        monkeypatch.undo()
        answer = await read(stream, render)
        await subscribe(c, LOBBY)
        await presence_flush()
        await until(  # the relay handed her join to both watchers
            lambda: all(
                w.held.get(LOBBY) or w.watched[LOBBY].newest > before[w]
                for w in watchers
            )
        )
        return answer

    monkeypatch.setattr(registry, "snapshot_shared", read_then_carol_joins)
    group = room_stream("lobby").presence_group
    await get_channel_layer().group_send(group, Resync(LOBBY).event())
    for socket in (a, b):
        assert await told(socket) == {"alice", "bob", "carol"}
