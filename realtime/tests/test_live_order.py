"""Live messages reach a socket in id order, even when fan-out arrives reordered.

Two processes fan out independently: 2 can reach a socket before 1 although 1
committed first. The socket must still pass on 1, 2 (1 read from the
database), then drop the late live copy of 1: a client resuming with
`since` = the last id it saw never skips a message.
"""

import pytest
from channels.layers import get_channel_layer

from realtime.tests.conftest import TIMEOUT, db, subscribe
from realtime.tests.messages import room_message_store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def ids_received(communicator, count: int) -> list[int]:
    frames = [
        await communicator.receive_json_from(timeout=TIMEOUT) for _ in range(count)
    ]
    assert all(f["type"] == "message" for f in frames), frames
    return [f["id"] for f in frames]


async def test_reordered_fanout_is_delivered_in_order_without_duplicates(
    connect, alice, bob, rooms
):
    b = await connect(bob)
    await subscribe(b, "room:lobby", since=0)
    first, second, third = [
        await db(room_message_store, room=rooms["lobby"], sender=alice, data={"n": n})
        for n in (1, 2, 3)
    ]
    layer = get_channel_layer()
    for published in (second, first, third):  # 2 overtakes 1
        await layer.group_send(published.group, published.event)
    assert await ids_received(b, 3) == [1, 2, 3]
    assert await b.receive_nothing(timeout=0.3)  # the late copy of 1 was dropped


async def test_without_since_the_first_live_message_sets_the_starting_point(
    connect, alice, bob, rooms
):
    old = await db(room_message_store, room=rooms["lobby"], sender=alice, data=0)
    b = await connect(bob)
    await subscribe(b, "room:lobby")  # no history asked for
    new = await db(room_message_store, room=rooms["lobby"], sender=alice, data=1)
    await get_channel_layer().group_send(new.group, new.event)
    assert await ids_received(b, 1) == [new.message.seq]
    assert old.message.seq < new.message.seq
    assert await b.receive_nothing(timeout=0.3)
