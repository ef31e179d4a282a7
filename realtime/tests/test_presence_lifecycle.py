"""Presence as users and rights change under live sockets (docs/protocol.md §4.4).

One process, real sockets: a user renamed, deactivated or deleted while he
is on a stream, and a member removed from a private room he watches.
"""

import pytest
from channels.layers import get_channel_layer

from realtime.presence.events import Resync
from realtime.services import membership_create, membership_delete
from realtime.streams import room_stream
from realtime.tests.conftest import TIMEOUT, db, next_frame, send, subscribe, watch
from realtime.tests.sockets import close_code

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

# Seconds of silence that mean "nothing more comes": longer than the two
# windows a join may wait (AUTHSOCKET_PRESENCE_WINDOW_MS, 200 ms).
QUIET = 0.6
FORBIDDEN = {
    "type": "error",
    "code": "forbidden",
    "detail": "No such stream, or not allowed.",
}


async def listed(communicator, stream: str) -> list[tuple[int, str, int]]:
    """(id, username, connections) of each user a `presence` request lists."""
    answer = await send(communicator, {"type": "presence", "stream": stream})
    assert answer["type"] == "presence", answer
    return [(u["id"], u["username"], u["connections"]) for u in answer["users"]]


def change(kind: str, stream: str, user_id: int, username: str) -> dict:
    return {
        "type": f"presence.{kind}",
        "stream": stream,
        "user": {"id": user_id, "username": username},
    }


def renamed(user, name: str) -> None:
    user.username = name
    user.save()


async def test_a_user_renamed_while_on_a_stream_keeps_his_id_in_every_frame(
    connect, alice, bob, rooms
):
    """A socket keeps the name its user had when it connected; the stream
    lists a user under the name of his socket that subscribed last, and his
    leave carries that name. Only the id identifies him (§4.4)."""
    a, old = await connect(alice), await connect(bob)
    await watch(a, "room:lobby")
    await subscribe(old, "room:lobby")
    assert await next_frame(a) == change("join", "room:lobby", bob.pk, "bob")
    await db(renamed, bob, "robert")
    assert await listed(a, "room:lobby") == [(alice.pk, "alice", 1), (bob.pk, "bob", 1)]
    new = await connect(bob)
    await subscribe(new, "room:lobby")
    assert await listed(a, "room:lobby") == [
        (alice.pk, "alice", 1),
        (bob.pk, "robert", 2),
    ]
    await new.disconnect()
    assert await listed(a, "room:lobby") == [
        (alice.pk, "alice", 1),
        (bob.pk, "robert", 1),
    ]
    await old.disconnect()
    assert await next_frame(a) == change("leave", "room:lobby", bob.pk, "robert")
    assert await a.receive_nothing(timeout=QUIET)  # no join was ever sent for him


def deactivated(user) -> None:
    user.is_active = False
    user.save()


def deleted(user) -> None:
    user.delete()


@pytest.mark.parametrize("end", [deactivated, deleted])
async def test_a_user_deactivated_or_deleted_while_subscribed_leaves_once(
    connect, alice, bob, rooms, end
):
    """Both his sockets close 4403 (deleted, his private room is taken from
    him too): one leave per stream he was on, nothing more."""
    a, b1, b2 = await connect(alice), await connect(bob), await connect(bob)
    for stream in ("room:lobby", "room:team"):
        await watch(a, stream)
        await subscribe(b1, stream)
        await subscribe(b2, stream)
        assert await next_frame(a) == change("join", stream, bob.pk, "bob")
    bob_id = bob.pk  # deleting him clears it
    await db(end, bob)
    for socket in (b1, b2):
        code, _ = await close_code(socket, timeout=TIMEOUT)
        assert code == 4403
        await socket.disconnect(code)  # the client's closing handshake
    leaves = sorted([await next_frame(a), await next_frame(a)], key=str)
    assert leaves == [
        change("leave", "room:lobby", bob_id, "bob"),
        change("leave", "room:team", bob_id, "bob"),
    ]
    assert await a.receive_nothing(timeout=QUIET)
    assert await listed(a, "room:lobby") == [(alice.pk, "alice", 1)]


async def test_a_member_removed_from_a_room_he_watches_hears_nothing_more_of_it(
    connect, alice, bob, carol, rooms
):
    """`unsubscribed` with reason `forbidden`, his leave to the others, and
    no presence frame of the room after it: not a join, not a snapshot."""
    a, b = await connect(alice), await connect(bob)
    await watch(a, "room:team")
    await watch(b, "room:team")
    await db(membership_delete, user=alice, room=rooms["team"])
    assert await next_frame(a) == {
        "type": "unsubscribed",
        "stream": "room:team",
        "reason": "forbidden",
    }
    assert await next_frame(b) == change("leave", "room:team", alice.pk, "alice")
    await db(membership_create, user=carol, room=rooms["team"])
    c = await connect(carol)
    await subscribe(c, "room:team")
    assert await next_frame(b) == change("join", "room:team", carol.pk, "carol")
    await get_channel_layer().group_send(
        room_stream("team").presence_group, Resync("room:team").event()
    )
    assert (await next_frame(b))["type"] == "presence"
    assert await a.receive_nothing(timeout=QUIET)
    assert await send(a, {"type": "presence", "stream": "room:team"}) == FORBIDDEN
    assert await listed(b, "room:team") == [(bob.pk, "bob", 1), (carol.pk, "carol", 1)]
