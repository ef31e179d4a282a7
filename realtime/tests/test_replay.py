"""`since`, `last_id`, `reset` and truncation over raw frames (docs/protocol.md).

Every frame is checked as the server sends it: no client here drops a
duplicate, so a message sent twice or out of order fails the test.
"""

import contextlib
import re

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection

from realtime import stream_frames
from realtime.models import Message
from realtime.publish import publish_to_room, publish_to_user
from realtime.replay import replay_read
from realtime.tests.conftest import TIMEOUT, db, send
from realtime.tests.messages import room_message_store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

QUIET = 0.3  # seconds of silence that mean "nothing arrives"


async def frames(communicator, count: int) -> list[dict]:
    return [await communicator.receive_json_from(timeout=TIMEOUT) for _ in range(count)]


async def ids(communicator, count: int, *, replay: bool = False) -> list[int]:
    """The next `count` frames, all messages, live or replayed as asked."""
    received = await frames(communicator, count)
    for frame in received:
        assert frame["type"] == "message", received
        assert frame.get("replay", False) is replay, received
    return [frame["id"] for frame in received]


async def store(rooms, alice, count: int, slug: str = "team") -> None:
    for n in range(count):
        await db(publish_to_room, room=rooms[slug], sender=alice, data=n)


def subscribe_frame(stream: str, **fields) -> dict:
    return {"type": "subscribe", "stream": stream, **fields}


@pytest.fixture
async def message_limits():
    """The LIMIT of every read of stored messages by the consumer's ORM thread.

    A LIMIT bounds the rows the database can return: the measure of what one
    read may load into memory.
    """
    limits: list[int | None] = []

    def record(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("SELECT") and re.search(
            r'FROM\s+"realtime_message"', sql
        ):
            found = re.search(r"LIMIT\s+(\d+)", sql)
            limits.append(int(found[1]) if found else None)
        return execute(sql, params, many, context)

    stack = contextlib.ExitStack()
    # The thread `database_sync_to_async` runs on: tests and consumers share it.
    await db(lambda: stack.enter_context(connection.execute_wrapper(record)))
    yield limits
    await db(stack.close)


async def test_subscribed_carries_the_streams_last_id_then_only_newer_live(
    connect, alice, bob, rooms
):
    await store(rooms, alice, 3)
    b = await connect(bob)
    assert await send(b, subscribe_frame("room:team", ref="s")) == {
        "type": "subscribed",
        "stream": "room:team",
        "last_id": 3,
        "ref": "s",
    }
    assert await send(b, subscribe_frame("room:lobby")) == {
        "type": "subscribed",
        "stream": "room:lobby",
        "last_id": 0,
    }
    await store(rooms, alice, 1)
    assert await ids(b, 1) == [4]
    assert await b.receive_nothing(timeout=QUIET)


async def test_since_past_the_end_is_a_reset_and_swallows_nothing(
    connect, alice, bob, rooms
):
    await store(rooms, alice, 2)
    b = await connect(bob)
    assert await send(b, subscribe_frame("room:team", since=10)) == {
        "type": "subscribed",
        "stream": "room:team",
        "last_id": 2,
        "reset": True,
    }
    await store(rooms, alice, 2)
    assert await ids(b, 2) == [3, 4]
    assert await b.receive_nothing(timeout=QUIET)


async def test_a_user_since_below_what_came_live_before_it_is_a_reset(
    connect, alice, bob
):
    """The user stream is live from `welcome`: a notification that arrives
    before the client's `subscribe` with `since` is sent first, and the ids
    under it can no longer be (ids only go up). That `since` is answered as
    one the server cannot honour: `reset`, never a silent gap."""
    for n in range(2):
        await db(publish_to_user, user=bob, data=n)
    b = await connect(bob)
    await db(publish_to_user, user=bob, data="live")
    assert await ids(b, 1) == [3]
    assert await send(b, subscribe_frame("user", since=0)) == {
        "type": "subscribed",
        "stream": "user",
        "last_id": 3,
        "reset": True,
    }
    # From just under the live one, nothing was lost: no reset.
    c = await connect(bob)
    await db(publish_to_user, user=bob, data="live again")
    assert await ids(c, 1) == [4]
    assert await ids(b, 1) == [4]
    answer = await send(c, subscribe_frame("user", since=3))
    assert answer == {"type": "subscribed", "stream": "user", "last_id": 4}
    assert await b.receive_nothing(timeout=QUIET)
    assert await c.receive_nothing(timeout=QUIET)


async def test_since_at_the_end_replays_nothing_and_is_no_reset(
    connect, alice, bob, rooms
):
    await store(rooms, alice, 2)
    b = await connect(bob)
    answer = await send(b, subscribe_frame("room:team", since=2))
    assert answer == {"type": "subscribed", "stream": "room:team", "last_id": 2}
    await store(rooms, alice, 1)
    assert await ids(b, 1) == [3]


async def test_replay_is_exactly_since_to_last_id_then_live(connect, alice, bob, rooms):
    await store(rooms, alice, 4)
    b = await connect(bob)
    answer = await send(b, subscribe_frame("room:team", since=1))
    assert answer == {"type": "subscribed", "stream": "room:team", "last_id": 4}
    assert await ids(b, 3, replay=True) == [2, 3, 4]
    await store(rooms, alice, 1)
    assert await ids(b, 1) == [5]
    assert await b.receive_nothing(timeout=QUIET)


@pytest.mark.parametrize("held", [False, True], ids=["first", "held"])
async def test_after_truncation_nothing_live_until_resubscribed_without_duplicates(
    connect, alice, bob, rooms, settings, held
):
    """Paged alike whether the stream was held already (told `last_id`,
    sent nothing) or not."""
    settings.AUTHSOCKET_REPLAY_LIMIT = 3
    await store(rooms, alice, 5)
    b = await connect(bob)
    if held:
        await send(b, subscribe_frame("room:team"))
    answer = await send(b, subscribe_frame("room:team", since=0))
    assert answer == {"type": "subscribed", "stream": "room:team", "last_id": 5}
    assert await ids(b, 3, replay=True) == [1, 2, 3]
    truncated = {"type": "replay.truncated", "stream": "room:team", "next_since": 3}
    assert await b.receive_json_from(timeout=TIMEOUT) == truncated
    await store(rooms, alice, 1)  # 6: live, but the client is still paging
    assert await b.receive_nothing(timeout=QUIET)
    answer = await send(b, subscribe_frame("room:team", since=3))
    assert answer == {"type": "subscribed", "stream": "room:team", "last_id": 6}
    assert await ids(b, 3, replay=True) == [4, 5, 6]
    assert await b.receive_nothing(timeout=QUIET)
    await store(rooms, alice, 1)
    assert await ids(b, 1) == [7]
    assert await b.receive_nothing(timeout=QUIET)


async def test_one_subscribe_never_reads_more_than_the_replay_limit(
    connect, alice, bob, rooms, settings, message_limits
):
    settings.AUTHSOCKET_REPLAY_LIMIT = 3
    await store(rooms, alice, 10)
    b = await connect(bob)
    await send(b, subscribe_frame("room:team", since=0))
    assert len(await frames(b, 4)) == 4  # three messages and replay.truncated
    await store(rooms, alice, 1)  # live while paused: nothing is filled in
    assert await b.receive_nothing(timeout=QUIET)
    await send(b, subscribe_frame("room:team", since=3))
    assert await ids(b, 3, replay=True) == [4, 5, 6]
    assert message_limits and all(
        limit is not None and limit <= 3 for limit in message_limits
    ), message_limits


async def test_pruned_history_after_since_is_a_reset_and_the_rest_is_replayed(
    connect, alice, bob, rooms
):
    await store(rooms, alice, 6)
    await db(lambda: Message.objects.filter(stream="room:team", seq__lte=3).delete())
    b = await connect(bob)
    assert await send(b, subscribe_frame("room:team", since=1)) == {
        "type": "subscribed",
        "stream": "room:team",
        "last_id": 6,
        "reset": True,
    }
    assert await ids(b, 3, replay=True) == [4, 5, 6]
    await store(rooms, alice, 1)
    assert await ids(b, 1) == [7]
    c = await connect(bob)  # `since` = 3: 4 is kept, nothing was lost
    answer = await send(c, subscribe_frame("room:team", since=3))
    assert answer == {"type": "subscribed", "stream": "room:team", "last_id": 7}
    assert await ids(c, 4, replay=True) == [4, 5, 6, 7]


async def test_resubscribing_answers_again_and_never_doubles_delivery(
    connect, alice, bob, rooms
):
    await store(rooms, alice, 2)
    b = await connect(bob)
    await send(b, subscribe_frame("room:team", since=0))
    assert await ids(b, 2, replay=True) == [1, 2]
    answer = await send(b, subscribe_frame("room:team", since=0))
    assert answer == {"type": "subscribed", "stream": "room:team", "last_id": 2}
    assert await b.receive_nothing(timeout=QUIET)  # 1 and 2 are not sent again
    answer = await send(b, subscribe_frame("room:team"))
    assert answer == {"type": "subscribed", "stream": "room:team", "last_id": 2}
    await store(rooms, alice, 1)
    assert await ids(b, 1) == [3]  # one subscription: delivered once
    assert await b.receive_nothing(timeout=QUIET)


async def test_a_subscribe_after_unsubscribe_is_a_first_one_again(
    connect, alice, bob, rooms
):
    """The unsubscribe ended what the subscription remembered, so `since`
    replays ids this socket was already sent on the stream."""
    await store(rooms, alice, 2)
    b = await connect(bob)
    await send(b, subscribe_frame("room:team", since=0))
    assert await ids(b, 2, replay=True) == [1, 2]
    assert await send(b, {"type": "unsubscribe", "stream": "room:team"}) == {
        "type": "unsubscribed",
        "stream": "room:team",
    }
    await store(rooms, alice, 1)
    assert await b.receive_nothing(timeout=QUIET)  # 3 is not delivered
    answer = await send(b, subscribe_frame("room:team", since=0))
    assert answer == {"type": "subscribed", "stream": "room:team", "last_id": 3}
    assert await ids(b, 3, replay=True) == [1, 2, 3]
    assert await b.receive_nothing(timeout=QUIET)


async def subscribe_answer(communicator, count: int, **fields) -> list[dict]:
    """`subscribed` and the `count` frames after it; then nothing more comes."""
    answer = [await send(communicator, subscribe_frame("room:team", **fields))]
    answer += await frames(communicator, count)
    assert await communicator.receive_nothing(timeout=QUIET), answer
    return answer


async def test_subscribing_again_with_since_replays_what_was_never_sent(
    connect, alice, bob, rooms
):
    """Told `last_id` 12 but sent nothing, the socket asks for 10-12: a first
    subscribe with that `since` would replay them, and so does this one."""
    await store(rooms, alice, 12)
    b = await connect(bob)
    assert await send(b, subscribe_frame("room:team")) == {
        "type": "subscribed",
        "stream": "room:team",
        "last_id": 12,
    }
    again = await subscribe_answer(b, 3, since=9, ref="again")
    assert again[0] == {
        "type": "subscribed",
        "stream": "room:team",
        "last_id": 12,
        "ref": "again",
    }
    assert [(f["type"], f["id"], f["replay"]) for f in again[1:]] == [
        ("message", 10, True),
        ("message", 11, True),
        ("message", 12, True),
    ]
    fresh = await connect(bob)
    assert await subscribe_answer(fresh, 3, since=9, ref="again") == again
    await store(rooms, alice, 1)
    assert await ids(b, 1) == [13]
    assert await b.receive_nothing(timeout=QUIET)


async def test_subscribing_again_with_since_neither_doubles_nor_loses_live_messages(
    connect, alice, bob, rooms, monkeypatch
):
    """What was sent live is not replayed again, a late live copy of a
    replayed id is dropped, and a message committed while the replay is read
    arrives live, once."""
    layer = get_channel_layer()
    team = rooms["team"]
    await store(rooms, alice, 3)
    b = await connect(bob)
    await send(b, subscribe_frame("room:team"))  # last_id 3
    fourth = await db(room_message_store, room=team, sender=alice, data=4)
    await layer.group_send(fourth.group, fourth.event)
    assert await ids(b, 1) == [4]
    fifth = await db(
        room_message_store, room=team, sender=alice, data=5
    )  # fan-out late
    during = []

    def read_then_publish(**kwargs):
        """The replay's read, then a message committed and fanned out at once."""
        replay = replay_read(**kwargs)
        during.append(room_message_store(room=team, sender=alice, data=6))
        async_to_sync(layer.group_send)(during[0].group, during[0].event)
        return replay

    with monkeypatch.context() as patch:
        patch.setattr(stream_frames, "replay_read", read_then_publish)
        answer = await send(b, subscribe_frame("room:team", since=2))
        assert answer == {"type": "subscribed", "stream": "room:team", "last_id": 5}
        # 3 was never sent, but 4 was: sending 3 now would break the order
        # (per socket and stream ids only go up), so the replay starts above 4.
        assert await ids(b, 1, replay=True) == [5]
    assert len(during) == 1
    for late in (fifth, fourth):  # late or repeated fan-out of replayed ids
        await layer.group_send(late.group, late.event)
    assert await ids(b, 1) == [6]  # committed during the replay: live, after it
    assert await b.receive_nothing(timeout=QUIET)
    await store(rooms, alice, 1)
    assert await ids(b, 1) == [7]
    assert await b.receive_nothing(timeout=QUIET)


async def test_filling_a_reordered_gap_is_bounded_and_pages_like_a_replay(
    connect, alice, bob, rooms, settings
):
    """Live 5 arrives first (1-4 are late on another process): the gap is read
    at most `limit` at a time; beyond it the client pages with `next_since`."""
    settings.AUTHSOCKET_REPLAY_LIMIT = 2
    b = await connect(bob)
    await send(b, subscribe_frame("room:lobby"))  # last_id 0
    stored = [
        await db(room_message_store, room=rooms["lobby"], sender=alice, data=n)
        for n in range(5)
    ]
    layer = get_channel_layer()
    await layer.group_send(stored[4].group, stored[4].event)
    assert await ids(b, 2) == [1, 2]
    assert await b.receive_json_from(timeout=TIMEOUT) == {
        "type": "replay.truncated",
        "stream": "room:lobby",
        "next_since": 2,
    }
    for published in stored[:4]:  # the late copies: paused, then already sent
        await layer.group_send(published.group, published.event)
    assert await b.receive_nothing(timeout=QUIET)
    answer = await send(b, subscribe_frame("room:lobby", since=2))
    assert answer == {"type": "subscribed", "stream": "room:lobby", "last_id": 5}
    assert await ids(b, 2, replay=True) == [3, 4]
    assert (await b.receive_json_from(timeout=TIMEOUT))["next_since"] == 4
    await send(b, subscribe_frame("room:lobby", since=4))
    assert await ids(b, 1, replay=True) == [5]
    assert await b.receive_nothing(timeout=QUIET)
