"""realtime.channels_overrides.LocalChannelLayer: fan-out without a sweep per receive."""

import pytest
from channels.layers import InMemoryChannelLayer

from realtime import channels_overrides
from realtime.channels_overrides import LocalChannelLayer

pytestmark = pytest.mark.asyncio


async def test_fan_out_to_many_sockets_sweeps_expired_entries_once(monkeypatch):
    sweeps = []
    original = InMemoryChannelLayer._clean_expired
    monkeypatch.setattr(
        InMemoryChannelLayer,
        "_clean_expired",
        lambda self: (sweeps.append(1), original(self)),
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
    """Messages waiting on a channel (the layer drops a queue once empty)."""
    queue = layer.channels.get(channel)
    return 0 if queue is None else queue.qsize()
