"""ResilientRedisChannelLayer's reader: one task per process hands messages
to each channel's local queue (realtime/channels_redis_overrides.py)."""

import asyncio
import uuid

import pytest

from realtime import channels_redis_overrides
from realtime.channels_redis_overrides import ResilientRedisChannelLayer
from tests.services import require_redis

pytestmark = [pytest.mark.asyncio, pytest.mark.services]

WAIT = 5  # seconds; every wait is bounded


def new_layer(**config) -> ResilientRedisChannelLayer:
    return ResilientRedisChannelLayer(
        hosts=[require_redis()],
        prefix=f"authsocket-test-{uuid.uuid4().hex[:8]}",
        **config,
    )


@pytest.fixture
async def layer():
    layer = new_layer()
    yield layer
    await layer.flush()


async def test_one_group_message_reaches_every_local_receiver(layer):
    channels = [await layer.new_channel() for _ in range(50)]
    for channel in channels:
        await layer.group_add("room.lobby", channel)
    receivers = [asyncio.create_task(layer.receive(c)) for c in channels]
    await layer.group_send("room.lobby", {"type": "stream.message", "id": 7})
    received = await asyncio.wait_for(asyncio.gather(*receivers), WAIT)
    assert [event["id"] for event in received] == [7] * 50
    assert len(layer._readers) == 1  # one reader for the whole process
    assert layer._inboxes == {}  # emptied queues are not kept


async def test_a_message_sent_before_the_first_receive_is_kept(layer):
    channel = await layer.new_channel()  # what /readyz does: send, then receive
    await layer.send(channel, {"type": "health.ping"})
    other = await layer.new_channel()
    await layer.send(other, {"type": "health.ping", "n": 1})
    assert (await asyncio.wait_for(layer.receive(other), WAIT))["n"] == 1
    assert (await asyncio.wait_for(layer.receive(channel), WAIT))["type"] == (
        "health.ping"
    )


async def test_messages_of_one_channel_keep_their_order(layer):
    channel = await layer.new_channel()
    for n in range(20):
        await layer.send(channel, {"type": "m", "n": n})
    got = [
        (await asyncio.wait_for(layer.receive(channel), WAIT))["n"] for _ in range(20)
    ]
    assert got == list(range(20))


async def test_a_cancelled_receive_leaves_no_queue_behind(layer):
    channel = await layer.new_channel()
    waiting = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0)  # let it start waiting
    assert channel in layer._inboxes
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert channel not in layer._inboxes
    # A group message read after the socket left does not make a new queue.
    layer._deliver(channel, {"type": "stream.message"})
    assert channel not in layer._inboxes


async def test_a_full_queue_drops_its_oldest_message(layer):
    layer.capacity = 2
    channel = await layer.new_channel()
    for n in range(3):
        layer._deliver(channel, {"type": "m", "n": n})
    got = [(await layer.receive(channel))["n"] for _ in range(2)]
    assert got == [1, 2]


async def test_flush_stops_the_reader_and_forgets_memberships(layer):
    channel = await layer.new_channel()
    await layer.group_add("user.1", channel)
    receiving = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0)
    (reader,) = layer._readers.values()
    await layer.flush()
    assert reader.cancelled()
    assert layer._memberships == {} and layer._readers == {}
    receiving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiving


async def test_departed_channels_are_forgotten_after_a_while(layer, monkeypatch):
    monkeypatch.setattr(
        channels_redis_overrides, "CLOSED_MEMORY", -1.0
    )  # everything is old
    layer._mark_closed("specific.a!1")
    layer._mark_closed("specific.a!2")
    assert list(layer._closed) == []


async def test_a_membership_outlives_group_expiry_while_its_channel_lives():
    """channels_redis forgets a member `group_expiry` after it joined (a day by
    default) and a group's key as long after its last join; a socket may live
    as long as its session. Here the expiry is 1 s and the member is 3 s old:
    only the process re-adding its memberships keeps the message coming."""
    layer = new_layer(group_expiry=1)
    try:
        channel = await layer.new_channel()
        await layer.group_add("user.1", channel)
        receiving = asyncio.create_task(layer.receive(channel))  # starts the reader
        await asyncio.sleep(3)  # the passage of time is what is tested
        await layer.group_send("user.1", {"type": "sessions.revoked", "n": 1})
        assert (await asyncio.wait_for(receiving, WAIT))["n"] == 1
    finally:
        await layer.flush()
