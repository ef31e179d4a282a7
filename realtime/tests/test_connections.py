"""Per-user connection limit (docs/protocol.md §4.1, §4.3): accept, then close 4409."""

import pytest

from core.memory import reclaimer
from realtime.connections import registry
from realtime.protocol import SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX, CloseCode
from realtime.tests.sockets import close_code, db, still_open, welcomed

pytestmark = pytest.mark.django_db(transaction=True)


async def test_socket_over_the_limit_is_accepted_then_closed_4409(
    ws, alice, bob, open_session, settings
):
    settings.AUTHSOCKET_MAX_CONNECTIONS_PER_USER = 2
    tokens = await db(open_session, alice)
    held = [ws(f"token={tokens.access}") for _ in range(2)]
    for communicator in held:
        await welcomed(communicator)
    extra = ws(subprotocols=[SUBPROTOCOL, f"{TOKEN_SUBPROTOCOL_PREFIX}{tokens.access}"])
    connected, subprotocol = await extra.connect(timeout=5)
    assert (connected, subprotocol) == (True, SUBPROTOCOL)  # accepted, so it learns why
    code, _ = await close_code(extra, timeout=2)
    assert code == CloseCode.TOO_MANY_CONNECTIONS
    await extra.disconnect()
    bobs = ws(f"token={(await db(open_session, bob)).access}")
    await welcomed(bobs)  # the limit is per user
    assert registry.count(alice.pk) == 2
    for communicator in held:
        assert await still_open(communicator)
    for communicator in [*held, bobs]:
        await communicator.disconnect()


async def test_a_frame_sent_to_a_socket_closing_4409_is_not_read(
    ws, alice, open_session, settings
):
    settings.AUTHSOCKET_MAX_CONNECTIONS_PER_USER = 1
    tokens = await db(open_session, alice)
    held = ws(f"token={tokens.access}")
    await welcomed(held)
    extra = ws(f"token={tokens.access}")
    connected, _ = await extra.connect(timeout=5)
    assert connected
    # Before the close is read, as a client that does not know yet would.
    await extra.send_to(text_data='{"type": "ping", "ref": 1}')
    await extra.send_to(bytes_data=b"\x00")
    code, _ = await close_code(extra, timeout=2)
    assert code == CloseCode.TOO_MANY_CONNECTIONS
    # The consumer ends with the disconnect; an exception it raised before
    # would be raised here.
    await extra.disconnect(timeout=2)
    await held.disconnect()


async def test_closing_a_socket_frees_its_slot(ws, alice, open_session, settings):
    settings.AUTHSOCKET_MAX_CONNECTIONS_PER_USER = 1
    tokens = await db(open_session, alice)
    first = ws(f"token={tokens.access}")
    await welcomed(first)
    await first.disconnect()
    assert registry.count(alice.pk) == 0
    second = ws(f"token={tokens.access}")
    await welcomed(second)
    await second.disconnect()


async def test_every_close_is_counted_towards_giving_memory_back(
    ws, alice, open_session, settings, monkeypatch
):
    settings.AUTHSOCKET_RECLAIM_AFTER_DROP = 2
    reclaimed = []
    monkeypatch.setattr(reclaimer, "reclaim", reclaimed.append)
    monkeypatch.setattr(reclaimer, "peak", 0)
    monkeypatch.setattr(reclaimer, "_pending", False)
    tokens = await db(open_session, alice)
    sockets = [ws(f"token={tokens.access}") for _ in range(4)]
    for communicator in sockets:
        await welcomed(communicator)
    assert registry.open_count() == 4
    for communicator in sockets:
        await communicator.disconnect()
    assert registry.open_count() == 0
    assert reclaimed == [2]  # 4 open fell to 2: half, and by the minimum drop
