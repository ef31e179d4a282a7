"""The best-effort group send: delivered, or one warning and False."""

import asyncio
import logging

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from realtime.broadcast import agroup_send, group_send


@pytest.fixture
def broken_layer(monkeypatch):
    async def unreachable(group, message):
        raise ConnectionError("layer down")

    monkeypatch.setattr(get_channel_layer(), "group_send", unreachable)


async def test_async_send_reaches_the_group():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("user.1", channel)
    assert await agroup_send("user.1", {"type": "x.y"}, fallback="-")
    assert await asyncio.wait_for(layer.receive(channel), 1) == {"type": "x.y"}


async def test_sync_send_reaches_the_group():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("user.1", channel)
    assert await sync_to_async(group_send)("user.1", {"type": "x.y"}, fallback="-")
    assert await asyncio.wait_for(layer.receive(channel), 1) == {"type": "x.y"}


async def test_failure_is_one_warning_with_the_exception_type(broken_layer, caplog):
    with caplog.at_level(logging.WARNING):
        assert not await agroup_send("user.1", {"type": "x.y"}, fallback="left to Y")
        assert not await sync_to_async(group_send)(
            "user.1", {"type": "x.y"}, fallback="left to Z"
        )
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "channel layer unreachable (ConnectionError); left to Y",
        "channel layer unreachable (ConnectionError); left to Z",
    ]
    assert all(r.levelno == logging.WARNING and not r.exc_info for r in caplog.records)
