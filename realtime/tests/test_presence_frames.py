"""Presence over real sockets (docs/protocol.md §4.4), on one process.

Every socket on a stream of a kind with presence counts; only those that
asked get the snapshot and the changes, never one for their own subscribe.
"""

import pytest
from channels.layers import get_channel_layer

from accounts.revocation import session_revoke
from realtime.kinds import publish
from realtime.presence import broadcast, registry_get
from realtime.presence.events import Resync
from realtime.services import membership_delete
from realtime.streams import room_stream
from realtime.tests.conftest import TIMEOUT, db, next_frame, send, subscribe, watch
from realtime.tests.sockets import close_code, welcomed
from tests.metrics import Delta

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

QUIET = 0.3  # seconds of silence that mean "nothing arrives"
FORBIDDEN = {
    "type": "error",
    "code": "forbidden",
    "detail": "No such stream, or not allowed.",
}


def user(u) -> dict:
    return {"id": u.pk, "username": u.username}


async def test_the_snapshot_includes_the_caller_and_others_join_and_leave(
    connect, alice, bob, rooms
):
    a, b = await connect(alice), await connect(bob)
    assert await watch(a, "room:lobby") == {
        "type": "presence",
        "stream": "room:lobby",
        "users": [{**user(alice), "connections": 1}],
        "count": 1,
    }
    assert await a.receive_nothing(timeout=QUIET)  # never a join for oneself
    await subscribe(b, "room:lobby")
    assert await next_frame(a) == {
        "type": "presence.join",
        "stream": "room:lobby",
        "user": user(bob),
    }
    assert await b.receive_nothing(timeout=QUIET)  # bob did not ask for presence
    assert await send(b, {"type": "unsubscribe", "stream": "room:lobby"}) == {
        "type": "unsubscribed",
        "stream": "room:lobby",
    }
    assert await next_frame(a) == {
        "type": "presence.leave",
        "stream": "room:lobby",
        "user": user(bob),
    }


async def test_a_socket_without_presence_still_counts(connect, alice, bob, rooms):
    a, b = await connect(alice), await connect(bob)
    await subscribe(b, "room:lobby")
    snapshot = await watch(a, "room:lobby")
    assert [u["username"] for u in snapshot["users"]] == ["alice", "bob"]
    assert snapshot["count"] == 2


async def test_a_user_joins_with_his_first_socket_and_leaves_with_his_last(
    connect, alice, bob, rooms
):
    a = await connect(alice)
    b1, b2 = await connect(bob), await connect(bob)
    await watch(a, "room:lobby")
    await subscribe(b1, "room:lobby")
    assert (await next_frame(a))["type"] == "presence.join"
    await subscribe(b2, "room:lobby")
    snapshot = await send(a, {"type": "presence", "stream": "room:lobby", "ref": 7})
    assert snapshot["users"][1] == {**user(bob), "connections": 2}
    assert snapshot["ref"] == 7
    await b1.disconnect()
    assert await a.receive_nothing(timeout=QUIET)
    await b2.disconnect()
    assert await next_frame(a) == {
        "type": "presence.leave",
        "stream": "room:lobby",
        "user": user(bob),
    }


async def test_presence_on_a_kind_without_it_is_forbidden_and_changes_nothing(
    connect, alice, rooms, test_kinds
):
    a = await connect(alice)
    for stream in ("user", f"user:{alice.pk}", "tick:x"):
        frame = {"type": "subscribe", "stream": stream, "presence": True}
        assert await send(a, frame) == FORBIDDEN
        assert await send(a, {"type": "presence", "stream": stream}) == FORBIDDEN
    await db(publish, stream="tick:x", data={"n": 1})
    assert await a.receive_nothing(timeout=QUIET)  # no subscription was made


async def test_the_presence_frame_answers_readable_streams_only(
    connect, alice, bob, rooms
):
    a, b = await connect(alice), await connect(bob)
    await subscribe(b, "room:plaza")
    answer = await send(a, {"type": "presence", "stream": "room:plaza"})
    assert answer == {
        "type": "presence",
        "stream": "room:plaza",
        "users": [{**user(bob), "connections": 1}],
        "count": 1,
    }
    for hidden in ("room:secret", "room:nowhere", "room:Bad!", "elsewhere:1"):
        assert await send(a, {"type": "presence", "stream": hidden}) == FORBIDDEN
    bad = await send(a, {"type": "presence", "stream": 5})
    assert (bad["type"], bad["code"]) == ("error", "bad_request")
    assert await a.receive_nothing(timeout=QUIET)  # asking subscribes to nothing


async def test_subscribing_again_sends_a_fresh_snapshot_or_stops_presence(
    connect, alice, bob, carol, rooms
):
    a, b, c = await connect(alice), await connect(bob), await connect(carol)
    await subscribe(a, "room:lobby")
    await subscribe(b, "room:lobby")
    snapshot = await watch(a, "room:lobby")  # from without presence to with
    assert [u["username"] for u in snapshot["users"]] == ["alice", "bob"]
    assert (await watch(a, "room:lobby"))["count"] == 2  # again: a fresh one
    await subscribe(a, "room:lobby", presence=False)
    await subscribe(c, "room:lobby")
    assert await a.receive_nothing(timeout=QUIET)
    assert (await registry_get().snapshot("room:lobby")).count == 3


async def test_losing_the_right_is_a_leave(connect, alice, bob, rooms):
    a, b = await connect(alice), await connect(bob)
    await watch(b, "room:team")
    await subscribe(a, "room:team")
    assert (await next_frame(b))["type"] == "presence.join"
    await db(membership_delete, user=alice, room=rooms["team"])
    assert await next_frame(a) == {
        "type": "unsubscribed",
        "stream": "room:team",
        "reason": "forbidden",
    }
    assert await next_frame(b) == {
        "type": "presence.leave",
        "stream": "room:team",
        "user": user(alice),
    }


async def test_a_socket_closed_by_the_server_leaves(
    connect, ws, alice, bob, rooms, open_session
):
    b = await connect(bob)
    await watch(b, "room:lobby")
    tokens = await db(open_session, alice)
    a = ws(f"token={tokens.access}")
    await welcomed(a)
    await subscribe(a, "room:lobby")
    assert (await next_frame(b))["type"] == "presence.join"
    await db(session_revoke, session=tokens.session, reason="test")
    code, _ = await close_code(a, timeout=TIMEOUT)
    assert code == 4403
    await a.disconnect(code)  # the client's closing handshake, as under daphne
    assert await next_frame(b) == {
        "type": "presence.leave",
        "stream": "room:lobby",
        "user": user(alice),
    }
    assert (await registry_get().user_connections(alice.pk)).connections == 0


async def test_a_resync_sends_a_fresh_snapshot(connect, alice, bob, rooms):
    a, b = await connect(alice), await connect(bob)
    await watch(a, "room:lobby")
    await subscribe(b, "room:lobby")
    await next_frame(a)  # bob's join
    await get_channel_layer().group_send(
        room_stream("lobby").presence_group, Resync("room:lobby").event()
    )
    snapshot = await next_frame(a)
    assert snapshot["type"] == "presence" and snapshot["count"] == 2
    assert await b.receive_nothing(timeout=QUIET)


async def test_joins_and_leaves_are_counted_once_per_change(
    connect, alice, bob, carol, rooms
):
    joins = Delta("authsocket_presence_joins_total", kind="room")
    leaves = Delta("authsocket_presence_leaves_total", kind="room")
    with joins, leaves:
        a, b, c = await connect(alice), await connect(bob), await connect(carol)
        await watch(a, "room:lobby")
        await watch(b, "room:lobby")
        await next_frame(a)
        await subscribe(c, "room:lobby")
        await next_frame(a), await next_frame(b)
        await c.disconnect()
        await next_frame(a), await next_frame(b)
    assert (joins.value, leaves.value) == (3, 1)


async def test_the_registry_counts_every_socket_of_a_user_per_session(
    connect, alice, rooms
):
    await connect(alice)
    await connect(alice)
    answer = await registry_get().user_connections(alice.pk)
    assert answer.connections == 2 and len(answer.sessions) == 2


async def test_a_user_who_comes_and_goes_within_one_window_costs_watchers_nothing(
    connect, alice, bob, carol, rooms, settings
):
    settings.AUTHSOCKET_PRESENCE_WINDOW_MS = 400  # read by this test's outbox
    a, b, c = await connect(alice), await connect(bob), await connect(carol)
    await watch(a, "room:lobby")
    await subscribe(b, "room:lobby")
    await send(b, {"type": "unsubscribe", "stream": "room:lobby"})
    await subscribe(c, "room:lobby")  # the marker: the window's one change
    assert await next_frame(a) == {
        "type": "presence.join",
        "stream": "room:lobby",
        "user": user(carol),
    }
    assert await a.receive_nothing(timeout=QUIET)  # nothing of bob, ever


@pytest.mark.parametrize("way_out", ["unsubscribe", "close"])
async def test_a_shown_user_who_leaves_and_comes_back_at_once_is_a_leave_then_a_join(
    connect, alice, bob, rooms, way_out
):
    """His last socket left, so watchers are owed the leave, however soon
    he is back (a page reload): the join follows once it stood a window."""
    a, b = await connect(alice), await connect(bob)
    await watch(a, "room:lobby")
    await subscribe(b, "room:lobby")
    assert (await next_frame(a))["type"] == "presence.join"
    if way_out == "unsubscribe":
        await send(b, {"type": "unsubscribe", "stream": "room:lobby"})
    else:
        await b.disconnect()
        b = await connect(bob)
    await subscribe(b, "room:lobby")
    assert [await next_frame(a), await next_frame(a)] == [
        {"type": "presence.leave", "stream": "room:lobby", "user": user(bob)},
        {"type": "presence.join", "stream": "room:lobby", "user": user(bob)},
    ]
    assert await a.receive_nothing(timeout=QUIET)


async def test_a_window_with_many_changes_sends_one_fresh_snapshot(
    connect, alice, bob, carol, rooms, settings, monkeypatch
):
    monkeypatch.setattr(broadcast, "RESYNC_OVER", 1)
    settings.AUTHSOCKET_PRESENCE_WINDOW_MS = 400
    a, b, c = await connect(alice), await connect(bob), await connect(carol)
    await watch(a, "room:lobby")
    await subscribe(b, "room:lobby")
    await subscribe(c, "room:lobby")  # two users in one window: over the limit
    snapshot = await next_frame(a)
    assert snapshot["type"] == "presence" and snapshot["count"] == 3, snapshot
    assert await a.receive_nothing(timeout=QUIET)  # instead of two joins


async def test_changes_that_arrive_after_a_resync_snapshot_are_not_told_again(
    connect, alice, bob, rooms
):
    a, b = await connect(alice), await connect(bob)
    await watch(a, "room:lobby")
    await subscribe(b, "room:lobby")
    await get_channel_layer().group_send(
        room_stream("lobby").presence_group, Resync("room:lobby").event()
    )
    frames = [await next_frame(a)]
    if frames[0]["type"] == "presence.join":  # the window ended first
        frames.append(await next_frame(a))
    assert frames[-1]["type"] == "presence" and frames[-1]["count"] == 2
    assert await a.receive_nothing(timeout=QUIET)  # bob's join: in the snapshot


async def test_every_snapshot_a_watcher_gets_lists_it_when_cut(
    connect, alice, bob, rooms, monkeypatch
):
    """A subscribe again with presence, and an unprompted snapshot, list the
    watcher too: cut at the limit (1 here), bob is listed, not alice."""
    monkeypatch.setattr("realtime.presence.registry.PRESENCE_SNAPSHOT_LIMIT", 1)
    a, b = await connect(alice), await connect(bob)
    await subscribe(a, "room:lobby")
    await watch(b, "room:lobby")
    assert alice.pk < bob.pk  # cut by id alone, bob would not be listed
    again = await watch(b, "room:lobby")
    assert ([u["id"] for u in again["users"]], again["count"]) == ([bob.pk], 2)
    assert again["truncated"] is True
    await get_channel_layer().group_send(
        room_stream("lobby").presence_group, Resync("room:lobby").event()
    )
    fresh = await next_frame(b)
    assert fresh["type"] == "presence", fresh
    assert ([u["id"] for u in fresh["users"]], fresh["count"]) == ([bob.pk], 2)
