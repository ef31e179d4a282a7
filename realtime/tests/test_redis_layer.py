"""The stream flows again on the Redis channel layer (what production runs)."""

import uuid

import pytest
from channels.layers import get_channel_layer

from realtime.publish import publish_to_user
from realtime.services import membership_delete
from realtime.tests.conftest import TIMEOUT, db, send, subscribe
from tests.services import require_redis as redis_url

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.services,
]


@pytest.fixture(autouse=True)
def redis_layer(settings):
    """A private key prefix, so parallel test runs never share groups."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "realtime.channels_redis_overrides.ResilientRedisChannelLayer",
            "CONFIG": {
                "hosts": [redis_url()],
                "prefix": f"authsocket-test-{uuid.uuid4().hex[:8]}",
            },
        }
    }


async def test_room_delivery_exclusion_and_leaving(connect, alice, bob, carol, rooms):
    assert type(get_channel_layer()).__name__ == "ResilientRedisChannelLayer"
    a, b, c = await connect(alice), await connect(bob), await connect(carol)
    await subscribe(a, "room:team")
    await subscribe(b, "room:team")
    assert (await send(c, {"type": "subscribe", "stream": "room:team"}))[
        "code"
    ] == "forbidden"
    await send(a, {"type": "publish", "stream": "room:team", "data": "hi"})
    for socket in (a, b):
        assert (await socket.receive_json_from(timeout=TIMEOUT))["data"] == "hi"
    assert await c.receive_nothing(timeout=0.5)

    await db(membership_delete, user=bob, room=rooms["team"])
    assert (await b.receive_json_from(timeout=TIMEOUT))["reason"] == "forbidden"
    await send(a, {"type": "publish", "stream": "room:team", "data": "after"})
    assert (await a.receive_json_from(timeout=TIMEOUT))["data"] == "after"
    assert await b.receive_nothing(timeout=0.5)


async def test_user_stream_notification(connect, alice):
    a = await connect(alice)
    await db(publish_to_user, user=alice, data={"text": "over redis"})
    frame = await a.receive_json_from(timeout=TIMEOUT)
    assert (frame["stream"], frame["data"]) == ("user", {"text": "over redis"})
