"""realtime.layers.LocalChannelLayer: fan-out without a sweep per receive."""

import pytest
from channels.layers import InMemoryChannelLayer

from realtime import layers
from realtime.layers import LocalChannelLayer

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
    monkeypatch.setattr(layers, "SWEEP_INTERVAL", 0.0)
    layer = LocalChannelLayer(expiry=-1)  # every message is born expired
    channel = await layer.new_channel()
    await layer.group_add("room.lobby", channel)
    await layer.send(channel, {"type": "stream.message"})
    layer._clean_expired()
    assert channel not in layer.channels
    assert channel not in layer.groups.get("room.lobby", {})
