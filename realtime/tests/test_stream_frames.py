"""Streams over real sockets (docs/protocol.md §4.2): delivery, replay, rights re-checked."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from realtime.models import Membership
from realtime.publish import publish_to_room, publish_to_user
from realtime.services import membership_delete
from realtime.streams import room_stream
from realtime.tests.conftest import TIMEOUT, db, send, subscribe

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

QUIET = 0.3  # seconds of silence that mean "nothing arrives"


async def publish(communicator, stream: str, data, ref=None) -> dict:
    frame = {"type": "publish", "stream": stream, "data": data}
    if ref is not None:
        frame["ref"] = ref
    return await send(communicator, frame)


async def next_message(communicator) -> dict:
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "message", frame
    return frame


async def test_alice_publishes_bob_receives_carol_gets_nothing(
    connect, alice, bob, carol, rooms
):
    a, b, c = await connect(alice), await connect(bob), await connect(carol)
    await subscribe(a, "room:team")
    await subscribe(b, "room:team")
    assert await send(c, {"type": "subscribe", "stream": "room:team"}) == {
        "type": "error",
        "code": "forbidden",
        "detail": "No such stream, or not allowed.",
    }

    ack = await publish(a, "room:team", {"text": "hi"}, ref="p1")
    assert ack == {"type": "published", "stream": "room:team", "id": 1, "ref": "p1"}
    for communicator in (a, b):
        message = await next_message(communicator)
        assert message["ts_ms"] > 0
        assert message == {
            "type": "message",
            "stream": "room:team",
            "id": 1,
            "sender": {"id": alice.pk, "username": "alice"},
            "data": {"text": "hi"},
            "ts_ms": message["ts_ms"],
        }
    assert await c.receive_nothing(timeout=QUIET)


async def test_any_json_is_published_null_included(connect, alice, rooms):
    a = await connect(alice)
    await subscribe(a, "room:team")
    for n, data in enumerate([None, 0, "", [], {"a": [None, 1.5]}], start=1):
        assert (await publish(a, "room:team", data))["id"] == n
        assert (await next_message(a))["data"] == data


async def test_replay_with_since_returns_exactly_the_missed_messages(
    connect, alice, bob, rooms
):
    for n in range(1, 6):
        await db(publish_to_room, room=rooms["team"], sender=alice, data={"n": n})
    b = await connect(bob)
    await subscribe(b, "room:team", since=2)
    replayed = [await next_message(b) for _ in range(3)]
    assert [(m["id"], m["data"]["n"], m["replay"]) for m in replayed] == [
        (3, 3, True),
        (4, 4, True),
        (5, 5, True),
    ]
    assert await b.receive_nothing(timeout=QUIET)
    await db(publish_to_room, room=rooms["team"], sender=alice, data={"n": 6})
    live = await next_message(b)
    assert live["id"] == 6 and "replay" not in live


async def test_replay_is_capped_then_truncated_with_next_since(
    connect, alice, bob, rooms, settings
):
    settings.AUTHSOCKET_REPLAY_LIMIT = 3
    for n in range(1, 6):
        await db(publish_to_room, room=rooms["team"], sender=alice, data=n)
    b = await connect(bob)
    await subscribe(b, "room:team", since=0)
    assert [(await next_message(b))["id"] for _ in range(3)] == [1, 2, 3]
    assert await b.receive_json_from(timeout=TIMEOUT) == {
        "type": "replay.truncated",
        "stream": "room:team",
        "next_since": 3,
    }
    await subscribe(b, "room:team", since=3)
    assert [(await next_message(b))["id"] for _ in range(2)] == [4, 5]
    assert await b.receive_nothing(timeout=QUIET)


async def test_live_copies_of_replayed_messages_are_dropped(connect, alice, bob, rooms):
    for n in range(1, 4):
        await db(publish_to_room, room=rooms["team"], sender=alice, data=n)
    b = await connect(bob)
    await subscribe(b, "room:team", since=0)
    assert [(await next_message(b))["id"] for _ in range(3)] == [1, 2, 3]
    layer = get_channel_layer()
    for message_id in (2, 3, 4):  # as if fanned out while the replay ran
        await layer.group_send(
            room_stream("team").group,
            {
                "type": "stream.message",
                "stream": "room:team",
                "id": message_id,
                "text": f'{{"type":"message","id":{message_id}}}',
            },
        )
    assert (await b.receive_json_from(timeout=TIMEOUT))["id"] == 4
    assert await b.receive_nothing(timeout=QUIET)


async def test_subscribing_mid_stream_under_load_misses_and_repeats_nothing(
    connect, alice, bob, rooms
):
    """Publishers in several threads while bob subscribes with since=0."""
    writers, per_writer = 3, 20
    total = writers * per_writer
    store = database_sync_to_async(publish_to_room, thread_sensitive=False)
    some_stored = asyncio.Event()

    async def publisher() -> None:
        for n in range(per_writer):
            await store(room=rooms["team"], sender=alice, data=n)
            if n == 3:
                some_stored.set()

    b = await connect(bob)
    tasks = [asyncio.create_task(publisher()) for _ in range(writers)]
    await asyncio.wait_for(some_stored.wait(), TIMEOUT)
    await subscribe(b, "room:team", since=0)
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    ids = [(await next_message(b))["id"] for _ in range(total)]
    assert sorted(ids) == list(range(1, total + 1))
    assert await b.receive_nothing(timeout=QUIET)


async def test_resubscribing_after_losing_the_right_ends_the_subscription(
    connect, alice, bob, rooms
):
    b = await connect(bob)
    await subscribe(b, "room:team")
    # A raw delete bypasses the signal: the socket learns it at resubscribe.
    await db(
        lambda: Membership.objects.filter(user=bob, room=rooms["team"])._raw_delete(
            "default"
        )
    )
    answer = await send(b, {"type": "subscribe", "stream": "room:team"})
    assert answer["code"] == "forbidden"
    await db(publish_to_room, room=rooms["team"], sender=alice, data="x")
    assert await b.receive_nothing(timeout=QUIET)


async def test_rest_post_is_delivered_live(connect, api, alice, bob, rooms):
    b = await connect(bob)
    await subscribe(b, "room:team")
    response = await db(
        lambda: api(alice).post(
            "/api/rooms/team/messages", {"data": [1, "two"]}, format="json"
        )
    )
    assert response.status_code == 201
    message = await next_message(b)
    assert message == {**response.json(), "ts_ms": message["ts_ms"]}
    assert message["data"] == [1, "two"] and message["id"] == 1


async def test_leaving_a_room_ends_the_subscription(connect, api, alice, bob, rooms):
    a, b = await connect(alice), await connect(bob)
    await subscribe(a, "room:team")
    await subscribe(b, "room:team")
    response = await db(lambda: api(bob).delete("/api/rooms/team/membership"))
    assert response.status_code == 204
    assert await b.receive_json_from(timeout=TIMEOUT) == {
        "type": "unsubscribed",
        "stream": "room:team",
        "reason": "forbidden",
    }
    await publish(a, "room:team", "after bob left")
    assert (await next_message(a))["data"] == "after bob left"
    assert await b.receive_nothing(timeout=QUIET)
    assert await a.receive_nothing(timeout=QUIET)  # alice kept hers, once


async def test_removal_in_the_admin_ends_the_subscription(connect, alice, bob, rooms):
    """A Membership deleted directly (admin inline, shell) fires the same re-check."""
    b = await connect(bob)
    await subscribe(b, "room:team")
    await db(lambda: Membership.objects.get(user=bob, room=rooms["team"]).delete())
    assert (await b.receive_json_from(timeout=TIMEOUT))["reason"] == "forbidden"
    await db(publish_to_room, room=rooms["team"], sender=alice, data="x")
    assert await b.receive_nothing(timeout=QUIET)


async def test_leaving_a_public_room_keeps_reading_it(connect, alice, bob, rooms):
    """Public rooms stay readable without membership: nothing ends."""
    b = await connect(bob)
    await subscribe(b, "room:plaza")
    await db(membership_delete, user=bob, room=rooms["plaza"])
    assert await b.receive_nothing(timeout=QUIET)
    await db(publish_to_room, room=rooms["plaza"], sender=alice, data="still")
    assert (await next_message(b))["data"] == "still"


async def test_room_made_private_ends_non_members_only(
    connect, alice, bob, carol, rooms
):
    b, c = await connect(bob), await connect(carol)
    await subscribe(b, "room:plaza")  # bob is a member
    await subscribe(c, "room:plaza")  # carol reads it because it is public
    rooms["plaza"].public = False
    await db(rooms["plaza"].save)  # as the admin does
    assert await c.receive_json_from(timeout=TIMEOUT) == {
        "type": "unsubscribed",
        "stream": "room:plaza",
        "reason": "forbidden",
    }
    assert await b.receive_nothing(timeout=QUIET)
    await db(publish_to_room, room=rooms["plaza"], sender=bob, data="members only")
    assert (await next_message(b))["data"] == "members only"
    assert await c.receive_nothing(timeout=QUIET)


async def test_deleted_room_ends_every_subscription(connect, alice, bob, rooms):
    a, b = await connect(alice), await connect(bob)
    await subscribe(a, "room:team")
    await subscribe(b, "room:team")
    await db(rooms["team"].delete)  # as the admin does
    for communicator in (a, b):
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {
            "type": "unsubscribed",
            "stream": "room:team",
            "reason": "forbidden",
        }
    assert await send(a, {"type": "subscribe", "stream": "room:team"}) == {
        "type": "error",
        "code": "forbidden",
        "detail": "No such stream, or not allowed.",
    }


async def test_unsubscribe_stops_delivery(connect, alice, bob, rooms):
    b = await connect(bob)
    await subscribe(b, "room:team")
    assert await send(b, {"type": "unsubscribe", "stream": "room:team", "ref": 3}) == {
        "type": "unsubscribed",
        "stream": "room:team",
        "ref": 3,
    }
    await db(publish_to_room, room=rooms["team"], sender=alice, data="gone")
    assert await b.receive_nothing(timeout=QUIET)


async def test_fan_out_is_one_group_send_whatever_the_subscribers(
    connect, alice, bob, rooms, monkeypatch
):
    sockets = [await connect(user) for user in (alice, bob, alice, bob)]
    for socket in sockets:
        await subscribe(socket, "room:team")
    layer, sent = get_channel_layer(), []
    original = layer.group_send

    async def counting(group, message):
        sent.append(group)
        await original(group, message)

    monkeypatch.setattr(layer, "group_send", counting)
    await publish(sockets[0], "room:team", "to all")
    for socket in sockets:
        assert (await next_message(socket))["data"] == "to all"
    assert sent == ["room.team"]


async def test_channel_layer_down_at_subscribe_closes_4503(
    connect, alice, rooms, monkeypatch
):
    a = await connect(alice)
    layer = get_channel_layer()

    async def broken(group, channel):
        raise ConnectionError("layer down")

    monkeypatch.setattr(layer, "group_add", broken)
    await a.send_json_to({"type": "subscribe", "stream": "room:team"})
    assert await a.receive_output(timeout=TIMEOUT) == {
        "type": "websocket.close",
        "code": 4503,
    }


async def test_subscription_limit(connect, alice, rooms, settings):
    settings.AUTHSOCKET_MAX_SUBSCRIPTIONS = 2
    a = await connect(alice)
    await subscribe(a, "room:lobby")
    await subscribe(a, "room:team")
    await subscribe(a, "room:team")  # again: not a new subscription
    await subscribe(a, "user")  # the user stream does not count
    answer = await send(a, {"type": "subscribe", "stream": "room:plaza", "ref": 9})
    assert answer["code"] == "too_many_subscriptions" and answer["ref"] == 9
    await send(a, {"type": "unsubscribe", "stream": "room:lobby"})
    await subscribe(a, "room:plaza")


# --- the user stream ------------------------------------------------------------


async def test_user_stream_is_delivered_without_subscribing(connect, alice):
    a = await connect(alice)
    await db(publish_to_user, user=alice, data={"text": "hello"})
    message = await next_message(a)
    assert message["stream"] == "user" and message["sender"] is None
    assert message["id"] == 1 and message["data"] == {"text": "hello"}


async def test_user_alias_is_answered_and_never_doubles_delivery(connect, alice):
    a = await connect(alice)
    await subscribe(a, f"user:{alice.pk}")
    await subscribe(a, "user")
    await db(publish_to_user, user=alice, data="once")
    assert (await next_message(a))["stream"] == "user"
    assert await a.receive_nothing(timeout=QUIET)


async def test_user_stream_replays_with_since(connect, alice):
    for n in range(1, 4):
        await db(publish_to_user, user=alice, data=n)
    a = await connect(alice)
    await subscribe(a, f"user:{alice.pk}", since=1)
    replayed = [await next_message(a) for _ in range(2)]
    assert [(m["id"], m["stream"], m["replay"]) for m in replayed] == [
        (2, "user", True),
        (3, "user", True),
    ]
    assert await a.receive_nothing(timeout=QUIET)


async def test_another_users_stream_is_forbidden_and_never_delivered(
    connect, alice, bob
):
    a = await connect(alice)
    answer = await send(a, {"type": "subscribe", "stream": f"user:{bob.pk}"})
    assert answer["code"] == "forbidden"
    await db(publish_to_user, user=bob, data="for bob")
    assert await a.receive_nothing(timeout=QUIET)


async def test_unsubscribing_the_user_stream_mutes_it_until_resubscribed(
    connect, alice
):
    a = await connect(alice)
    await send(a, {"type": "unsubscribe", "stream": "user"})
    await db(publish_to_user, user=alice, data="muted")
    assert await a.receive_nothing(timeout=QUIET)
    await subscribe(a, "user", since=0)
    assert (await next_message(a))["data"] == "muted"
    await db(publish_to_user, user=alice, data="live")
    assert (await next_message(a))["data"] == "live"


async def test_clients_cannot_publish_to_user_streams(connect, alice, bob):
    a = await connect(alice)
    for stream in ("user", f"user:{alice.pk}", f"user:{bob.pk}"):
        assert (await publish(a, stream, "x"))["code"] == "forbidden"
