"""realtime.channels_overrides.LocalChannelLayer: fan-out without a sweep per receive."""

import asyncio

import pytest
from channels.exceptions import ChannelFull

from realtime import channels_overrides
from realtime.channels_overrides import LocalChannelLayer
from realtime.mailbox import Mailbox

pytestmark = pytest.mark.asyncio


async def test_fan_out_to_many_sockets_sweeps_expired_entries_once(monkeypatch):
    sweeps = []
    original = LocalChannelLayer._sweep
    monkeypatch.setattr(
        LocalChannelLayer, "_sweep", lambda self: (sweeps.append(1), original(self))
    )
    layer = LocalChannelLayer(capacity=10)
    channels = [await layer.new_channel() for _ in range(300)]
    for channel in channels:
        await layer.group_add("room.lobby", channel)
    await layer.group_send("room.lobby", {"type": "stream.message", "id": 1})
    received = [await layer.receive(channel) for channel in channels]
    assert [message["id"] for message in received] == [1] * 300
    assert len(sweeps) <= 2  # the stock layer sweeps on every one of 301 calls


async def test_expired_messages_are_still_dropped_by_the_next_sweep(monkeypatch):
    monkeypatch.setattr(channels_overrides, "SWEEP_INTERVAL", 0.0)
    layer = LocalChannelLayer(expiry=-1)  # every message is born expired
    channel = await layer.new_channel()
    await layer.group_add("room.lobby", channel)
    await layer.send(channel, {"type": "stream.message"})
    layer._clean_expired()
    assert channel not in layer.channels
    assert channel not in layer.groups.get("room.lobby", {})


async def test_group_send_reaches_every_member_once_apart_from_the_senders_dict():
    layer = LocalChannelLayer()
    channels = [await layer.new_channel() for _ in range(3)]
    for channel in channels:
        await layer.group_add("room.lobby", channel)
    await layer.group_add("room.other", await layer.new_channel())
    message = {"type": "stream.message", "data": {"n": 1}}
    await layer.group_send("room.lobby", message)
    message["data"]["n"] = 2  # the sender reuses its dict
    received = [await layer.receive(channel) for channel in channels]
    assert [event["data"] for event in received] == [{"n": 1}] * 3
    assert all(pending(layer, channel) == 0 for channel in channels)
    assert pending(layer, next(iter(layer.groups["room.other"]))) == 0


async def test_group_send_skips_a_full_member_and_still_reaches_the_others():
    layer = LocalChannelLayer(capacity=1)
    full, free = await layer.new_channel(), await layer.new_channel()
    for channel in (full, free):
        await layer.group_add("room.lobby", channel)
    await layer.send(full, {"type": "stream.message", "id": 0})
    await layer.group_send("room.lobby", {"type": "stream.message", "id": 1})
    assert (await layer.receive(full))["id"] == 0
    assert pending(layer, full) == 0
    assert (await layer.receive(free))["id"] == 1


async def test_group_send_refuses_a_message_that_is_not_a_dict():
    layer = LocalChannelLayer()
    with pytest.raises(TypeError):
        await layer.group_send("room.lobby", ["stream.message"])


async def test_group_send_to_an_empty_group_does_nothing():
    layer = LocalChannelLayer()
    await layer.group_send("room.nobody", {"type": "stream.message"})
    assert layer.channels == {}


def pending(layer: LocalChannelLayer, channel: str) -> int:
    """Messages waiting on a channel (the layer drops a mailbox once empty)."""
    queue = layer.channels.get(channel)
    return 0 if queue is None else queue.qsize()


async def test_an_idle_receive_waits_on_a_mailbox_not_a_queue():
    """Every idle socket waits like this: ~3 KiB an asyncio.Queue, a Mailbox far less."""
    layer = LocalChannelLayer()
    channel = await layer.new_channel()
    receiving = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)  # let it start waiting
    assert isinstance(layer.channels[channel], Mailbox)
    await layer.send(channel, {"type": "stream.message", "id": 7})
    assert (await asyncio.wait_for(receiving, 1))["id"] == 7
    assert channel not in layer.channels  # emptied: dropped


async def test_a_cancelled_receive_drops_its_mailbox():
    layer = LocalChannelLayer()
    channel = await layer.new_channel()
    receiving = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    receiving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiving
    assert channel not in layer.channels


async def test_send_over_capacity_raises_channel_full():
    layer = LocalChannelLayer(capacity=1)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "stream.message"})
    with pytest.raises(ChannelFull):
        await layer.send(channel, {"type": "stream.message"})


async def test_a_membership_older_than_group_expiry_still_hears_its_group(monkeypatch):
    """A socket may live as long as its session, far past Channels' one-day
    `group_expiry`: its rooms and user stream must still reach it."""
    monkeypatch.setattr(channels_overrides, "SWEEP_INTERVAL", 0.0)
    layer = LocalChannelLayer(group_expiry=-1)  # every membership is born old
    channel = await layer.new_channel()
    await layer.group_add("room.lobby", channel)
    layer._clean_expired()
    await layer.group_send("room.lobby", {"type": "stream.message", "id": 1})
    assert (await asyncio.wait_for(layer.receive(channel), 5))["id"] == 1
