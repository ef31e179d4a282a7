"""Each WebSocket-side metric moves when its event happens (docs/metrics.md)."""

import time

import pytest
from channels.layers import get_channel_layer
from prometheus_client import REGISTRY, generate_latest

from accounts.revocation import session_revoke
from accounts.tokens import encode_access
from realtime.consumers import StreamConsumer
from realtime.groups import user_group
from realtime.models import Room
from realtime.presence.broadcast import presence_flush
from realtime.protocol import CloseCode
from realtime.publish import publish_to_room
from realtime.revocation import sockets_close
from realtime.session_guard import guard
from realtime.tests.conftest import TIMEOUT, db, send
from realtime.tests.sockets import close_code, refused, welcomed
from tests.metrics import Delta, value

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def handshakes(outcome, reason, transport) -> Delta:
    return Delta(
        "authsocket_handshakes_total",
        outcome=outcome,
        reason=reason,
        transport=transport,
    )


@pytest.mark.parametrize(
    "query, headers, reason, transport",
    [
        ("token=not-a-jwt", (), "invalid_token", "query"),
        ("", (), "no_credential", "none"),
        ("token=a&token=b", (), "bad_credential", "none"),
        ("", [("origin", "https://evil.example")], "origin", "none"),
    ],
)
async def test_a_refused_handshake_counts_its_reason_and_transport(
    ws, query, headers, reason, transport
):
    with handshakes("refused", reason, transport) as counted:
        assert await refused(ws(query, headers=headers))
    assert counted.value == 1


async def test_an_unknown_ticket_counts_as_invalid_token(ws):
    with handshakes("refused", "invalid_token", "ticket") as counted:
        assert await refused(ws("ticket=" + "A" * 43))
    assert counted.value == 1


async def test_a_path_that_refuses_a_user_counts_as_not_allowed(
    ws, alice, open_session
):
    tokens = await db(open_session, alice)
    with handshakes("refused", "not_allowed", "query") as counted:
        assert await refused(ws(f"token={tokens.access}", path="/nowhere/"))
    assert counted.value == 1


async def test_a_user_group_the_layer_cannot_join_counts_as_channel_layer(
    ws, alice, open_session, monkeypatch
):
    tokens = await db(open_session, alice)

    async def broken(group, channel):
        raise ConnectionError("layer down")

    monkeypatch.setattr(get_channel_layer(), "group_add", broken)
    with handshakes("refused", "channel_layer", "query") as counted:
        assert await refused(ws(f"token={tokens.access}"))
    assert counted.value == 1


async def test_a_session_revoked_during_the_handshake_counts_as_revoked(
    ws, alice, open_session, monkeypatch
):
    """Revoked after the middleware's check, before the group join: the
    consumer's own look refuses it (realtime/tests/test_session_guard.py)."""
    tokens = await db(open_session, alice)
    join = StreamConsumer._join_groups

    async def join_after_revoking(consumer):
        assert await db(session_revoke, session=tokens.session, reason="test")
        return await join(consumer)

    monkeypatch.setattr(StreamConsumer, "_join_groups", join_after_revoking)
    with handshakes("refused", "revoked", "query") as counted:
        assert await refused(ws(f"token={tokens.access}"))
    assert counted.value == 1


async def test_an_expired_token_counts_as_token_expired(ws, alice, open_session):
    tokens = await db(open_session, alice)
    token, _ = encode_access(
        user_id=alice.pk, sid=tokens.session.sid, now=int(time.time()) - 3600, ttl=60
    )
    with handshakes("refused", "token_expired", "header") as counted:
        assert await refused(ws(headers=[("authorization", f"Bearer {token}")]))
    assert counted.value == 1


async def test_an_accepted_socket_counts_and_is_open_until_it_closes(
    ws, alice, open_session
):
    tokens = await db(open_session, alice)
    open_before = value("authsocket_open_sockets")
    with handshakes("accepted", "none", "query") as counted:
        communicator = ws(f"token={tokens.access}")
        await welcomed(communicator)
    assert counted.value == 1
    assert value("authsocket_open_sockets") == open_before + 1
    await communicator.disconnect()
    assert value("authsocket_open_sockets") == open_before


async def test_a_user_at_the_limit_is_a_refusal_and_a_4409(
    connect, ws, alice, open_session, settings
):
    settings.AUTHSOCKET_MAX_CONNECTIONS_PER_USER = 1
    await connect(alice)
    tokens = await db(open_session, alice)
    closes = Delta("authsocket_close_codes_total", code="4409")
    with handshakes("refused", "too_many_connections", "query") as counted, closes:
        communicator = ws(f"token={tokens.access}")
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        code, _ = await close_code(communicator, timeout=TIMEOUT)
        assert code == CloseCode.TOO_MANY_CONNECTIONS
    assert (counted.value, closes.value) == (1, 1)
    await communicator.disconnect()


async def test_close_codes_sent_are_counted(connect, alice):
    communicator = await connect(alice)
    with Delta("authsocket_close_codes_total", code="4415") as counted:
        await communicator.send_to(bytes_data=b"\x00")
        code, _ = await close_code(communicator, timeout=TIMEOUT)
    assert (code, counted.value) == (CloseCode.BINARY_FRAME, 1)


async def test_frames_are_counted_by_type_and_unknown_types_as_other(connect, alice):
    communicator = await connect(alice)
    pings = Delta("authsocket_frames_received_total", type="ping")
    others = Delta("authsocket_frames_received_total", type="other")
    with pings, others:
        await send(communicator, {"type": "ping"})
        await send(communicator, {"type": "shout-at-alice"})
    assert (pings.value, others.value) == (1, 1)


async def test_a_publish_counts_published_delivered_and_fanout_delay(
    connect, alice, bob, rooms
):
    sockets = [await connect(alice), await connect(bob)]
    for communicator in sockets:
        answer = await send(communicator, {"type": "subscribe", "stream": "room:lobby"})
        assert answer["type"] == "subscribed"
    published = Delta("authsocket_messages_published_total", kind="room")
    delivered = Delta("authsocket_messages_delivered_total", kind="room")
    delays = Delta("authsocket_fanout_delay_seconds_count", kind="room")
    waited = Delta("authsocket_fanout_delay_seconds_sum", kind="room")
    started = time.monotonic()
    with published, delivered, delays, waited:
        frame = {"type": "publish", "stream": "room:lobby", "data": {"n": 1}}
        assert (await send(sockets[0], frame))["type"] == "published"
        for communicator in sockets:
            message = await communicator.receive_json_from(timeout=TIMEOUT)
            assert message["type"] == "message"
    assert (published.value, delivered.value, delays.value) == (1, 2, 2)
    # Two real delays, each shorter than the test took.
    assert 0 < waited.value <= 2 * (time.monotonic() - started), waited.value


async def test_series_do_not_grow_with_the_number_of_rooms(connect, alice):
    communicator = await connect(alice)
    rooms = [
        await db(Room.objects.create, slug=f"r{i}", title=f"R{i}", public=True)
        for i in range(50)
    ]

    async def publish_and_receive(room):
        subscribe = {"type": "subscribe", "stream": f"room:{room.slug}"}
        assert (await send(communicator, subscribe))["type"] == "subscribed"
        await db(publish_to_room, room=room, sender=None, data={"room": room.slug})
        message = await communicator.receive_json_from(timeout=TIMEOUT)
        assert message["stream"] == f"room:{room.slug}"

    await publish_and_receive(rooms[0])
    # The first room's presence join is counted at its window's end: a kind's
    # first series, which would otherwise appear in the middle of the loop.
    await presence_flush()
    series = series_lines()
    with Delta("authsocket_messages_delivered_total", kind="room") as delivered:
        for room in rooms[1:]:
            await publish_and_receive(room)
    assert delivered.value == 49
    assert series_lines() == series
    assert "r49" not in generate_latest(REGISTRY).decode()


def series_lines() -> int:
    text = generate_latest(REGISTRY).decode()
    return sum(1 for line in text.splitlines() if not line.startswith("#"))


async def test_a_revocation_counts_its_reason_and_observes_the_close_delay(
    ws, alice, open_session
):
    tokens = await db(open_session, alice)
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)
    revocations = Delta("authsocket_revocations_total", reason="logout")
    delays = Delta("authsocket_revocation_close_delay_seconds_count")
    with revocations, delays:
        assert await db(session_revoke, session=tokens.session, reason="logout")
        code, _ = await close_code(communicator, timeout=TIMEOUT)
    assert code == CloseCode.REVOKED
    assert (revocations.value, delays.value) == (1, 1)
    assert value("authsocket_revocation_close_delay_seconds_sum") < 60
    await communicator.disconnect()


async def test_a_socket_the_poll_closed_first_is_not_observed_by_the_message(
    ws, alice, open_session
):
    """The histogram times the message's path only (docs/metrics.md): when the
    poll closed the socket first, the late message neither closes it again
    nor adds its delay."""
    tokens = await db(open_session, alice)
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)
    late = {
        "type": "sessions.revoked",
        "sids": [tokens.session.sid],
        "revoked_at": time.time() - 30,
    }
    with Delta("authsocket_revocation_close_delay_seconds_count") as delays:
        await sockets_close([tokens.session.sid])  # the poll's path
        closed = await communicator.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": CloseCode.REVOKED}
        await get_channel_layer().group_send(user_group(alice.pk), late)
        assert await communicator.receive_nothing(timeout=0.5)  # no second close
    assert delays.value == 0
    await communicator.disconnect()


async def test_a_failed_group_send_counts_as_a_channel_layer_error(
    ws, alice, open_session, monkeypatch
):
    tokens = await db(open_session, alice)
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)

    async def unreachable(*args, **kwargs):
        raise ConnectionError("layer down")

    monkeypatch.setattr(get_channel_layer(), "group_send", unreachable)
    operation = "group_send"
    with Delta("authsocket_channel_layer_errors_total", operation=operation) as errors:
        assert await db(session_revoke, session=tokens.session, reason="test")
        code, _ = await close_code(communicator, timeout=TIMEOUT)  # by the poll
    assert (code, errors.value) == (CloseCode.REVOKED, 1)
    await communicator.disconnect()


async def test_a_revocation_poll_reports_its_duration_and_age(connect, alice):
    await connect(alice)  # starts the watcher on this loop
    started = time.monotonic()
    with Delta("authsocket_revocation_poll_duration_seconds_count") as polls:
        await guard.poll_once()
    # The watcher polls on its own too and may land inside this window.
    assert polls.value >= 1
    # The age is that of this poll (or a later one), not of an older one or none (-1).
    age = value("authsocket_revocation_poll_age_seconds")
    assert 0 <= age <= time.monotonic() - started, age


async def test_instrumentation_off_counts_nothing(ws, settings):
    for enabled, expected in ((True, 1), (False, 0)):
        settings.AUTHSOCKET_METRICS = enabled
        with handshakes("refused", "invalid_token", "query") as counted:
            assert await refused(ws("token=not-a-jwt"))
        assert counted.value == expected
