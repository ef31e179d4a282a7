"""The per-process safety net (docs/protocol.md §3): revocations reach live sockets
within a second even when no channel-layer message does, including the
window between the middleware's check and the consumer joining its groups."""

import logging
import time
from datetime import timedelta

import pytest
from channels.layers import get_channel_layer
from django.db import OperationalError
from django.utils import timezone

from accounts.models import AuthSession
from accounts.revocation import session_revoke
from accounts.selectors import Refusal
from realtime import session_guard
from realtime.consumers import StreamConsumer
from realtime.groups import user_group
from realtime.protocol import CloseCode, SessionEvent
from realtime.publish import publish_to_user
from realtime.session_guard import SessionRefused, guard
from realtime.tests.sockets import close_code, db, refused, still_open, welcomed
from tests.sessions import revoke_as_another_process

pytestmark = pytest.mark.django_db(transaction=True)


async def test_poll_closes_a_socket_revoked_elsewhere_within_a_second(
    ws, alice, open_session
):
    tokens = await db(open_session, alice)
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)
    await db(revoke_as_another_process, tokens.session)
    revoked = time.time()
    code, closed_at = await close_code(communicator, timeout=2)
    assert code == CloseCode.REVOKED
    assert closed_at - revoked < 1.0
    await communicator.disconnect()


async def test_sockets_close_when_the_channel_layer_is_down(
    ws, alice, open_session, monkeypatch, caplog
):
    tokens = await db(open_session, alice)
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)
    from channels.layers import get_channel_layer

    async def unreachable(*args, **kwargs):
        raise ConnectionError("layer down")

    monkeypatch.setattr(get_channel_layer(), "group_send", unreachable)
    started = time.time()
    assert await db(session_revoke, session=tokens.session, reason="test")
    code, closed_at = await close_code(communicator, timeout=2)
    assert code == CloseCode.REVOKED
    assert closed_at - started < 1.0
    assert "revocation left to the poll" in caplog.text
    await communicator.disconnect()


@pytest.fixture
def revoke_while_joining(monkeypatch):
    """Run `revoke()` after the middleware's check, just before the group join."""
    hooks = []
    original = StreamConsumer._join_groups

    async def join_after_revoking(consumer):
        for hook in hooks:
            await hook()
        return await original(consumer)

    monkeypatch.setattr(StreamConsumer, "_join_groups", join_after_revoking)
    return hooks.append


async def test_revocation_elsewhere_between_check_and_join_still_closes(
    ws, alice, open_session, revoke_while_joining
):
    tokens = await db(open_session, alice)
    stamps = []

    async def revoke():
        await db(revoke_as_another_process, tokens.session)
        stamps.append(time.time())

    revoke_while_joining(revoke)
    communicator = ws(f"token={tokens.access}")
    connected, _ = await communicator.connect(timeout=5)
    if connected:  # accepted before the poll noticed: it must close it soon
        await communicator.receive_json_from(timeout=2)  # welcome
        code, closed_at = await close_code(communicator, timeout=2)
        assert code == CloseCode.REVOKED
        assert closed_at - stamps[0] < 1.0
    await communicator.disconnect()


async def test_revocation_here_between_check_and_join_refuses_before_accept(
    ws, alice, open_session, revoke_while_joining
):
    """The group message is sent before the socket joins; the local mark decides."""
    tokens = await db(open_session, alice)

    async def revoke():
        assert await db(session_revoke, session=tokens.session, reason="test")

    revoke_while_joining(revoke)
    assert await refused(ws(f"token={tokens.access}"))


async def test_revoked_session_is_refused_at_the_next_handshake(
    ws, alice, open_session
):
    tokens = await db(open_session, alice)
    first = ws(f"token={tokens.access}")
    await welcomed(first)
    await db(session_revoke, session=tokens.session, reason="test")
    assert (await close_code(first, timeout=2))[0] == CloseCode.REVOKED
    assert await refused(ws(f"token={tokens.access}"))
    await first.disconnect()


async def test_a_revocation_learned_by_message_refuses_that_session_at_once(
    ws, alice, open_session
):
    """Two sessions of one user, a socket of B only: the message naming A (as
    another process sends it) reaches the guard, not only B's socket. The
    database is left alone, so no poll can be what refuses A."""
    a_tokens = await db(open_session, alice)
    b_tokens = await db(open_session, alice)
    b = ws(f"token={b_tokens.access}")
    await welcomed(b)
    layer = get_channel_layer()
    await layer.group_send(
        user_group(alice.pk),
        {"type": SessionEvent.REVOKED.value, "sids": [a_tokens.session.sid]},
    )
    # The group is one queue per socket: once this arrives, that was handled.
    await db(publish_to_user, user=alice, data="after the revocation")
    assert (await b.receive_json_from(timeout=5))["data"] == "after the revocation"
    assert await refused(ws(f"token={a_tokens.access}"))
    assert await still_open(b)
    await b.disconnect()


async def test_poll_sees_a_revocation_whose_commit_came_late(alice, open_session):
    """Its `revoked_at` is older than the poll's time window; its pk is not."""
    seen = await db(open_session, alice)
    late = await db(open_session, alice)
    await db(revoke_as_another_process, seen.session)
    await guard.poll_once()
    assert guard.is_revoked(seen.session.sid)
    long_ago = timezone.now() - timedelta(minutes=10)
    await db(revoke_as_another_process, late.session, revoked_at=long_ago)
    await guard.poll_once()
    assert guard.is_revoked(late.session.sid)


async def test_database_failure_at_the_handshake_is_one_logged_refusal(
    ws, alice, open_session, monkeypatch, caplog
):
    tokens = await db(open_session, alice)

    def database_down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(session_guard, "sessions_by_sid", database_down)
    with caplog.at_level(logging.INFO):
        assert await refused(ws(f"token={tokens.access}"))
    refusals = [r for r in caplog.records if "websocket refused" in r.getMessage()]
    assert len(refusals) == 1
    assert "database unavailable (OperationalError)" in refusals[0].getMessage()
    assert refusals[0].levelno == logging.WARNING
    assert not any(r.exc_info for r in caplog.records)
    assert tokens.access not in caplog.text


async def test_cache_is_not_trusted_while_the_poll_fails(
    ws, alice, open_session, monkeypatch
):
    tokens = await db(open_session, alice)
    await guard.poll_once()
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)  # cached and trusted

    def log_unreadable(*args, **kwargs):
        raise OperationalError("log table locked")

    monkeypatch.setattr(session_guard, "revocations_since", log_unreadable)
    # Revoked without a log row the poll could see: only a fresh query can tell.
    await db(
        AuthSession.objects.filter(pk=tokens.session.pk).update,
        revoked_at=timezone.now(),
    )
    deadline = time.monotonic() + 2
    while True:  # the trust lapses within TRUST_WINDOW of the last good poll
        attempt = ws(f"token={tokens.access}")
        if await refused(attempt):
            break
        assert time.monotonic() < deadline, "cached answer trusted without a poll"
    assert await still_open(communicator)  # no log row: not closed, but refused
    await communicator.disconnect()


class FakeSocket:
    def __init__(self, sid: str, user_id: int, broken: bool = False):
        self.sid, self.user_id, self.broken, self.codes = sid, user_id, broken, []

    async def close_for(self, code: int) -> None:
        if self.broken:
            raise RuntimeError("transport gone")
        self.codes.append(code)


async def test_one_failing_close_spares_neither_the_others_nor_the_watcher(
    alice, open_session, monkeypatch
):
    from realtime.connections import registry

    tokens = await db(open_session, alice)
    broken = FakeSocket(tokens.session.sid, alice.pk, broken=True)
    healthy = FakeSocket(tokens.session.sid, alice.pk)
    monkeypatch.setattr(registry, "of_session", lambda sid: [broken, healthy])
    await guard.poll_once()
    await db(revoke_as_another_process, tokens.session)
    await guard.poll_once()  # does not raise
    assert healthy.codes == [CloseCode.REVOKED]


async def test_revocation_inside_a_long_outer_transaction_is_seen_after_commit(
    alice, open_session, monkeypatch
):
    """Stamped long before its commit made it visible: re-stamped on commit."""
    from django.db import transaction

    from accounts import revocation

    tokens = await db(open_session, alice)
    await guard.poll_once()  # nothing seen yet: no pk cursor to fall back on
    stamps = iter([timezone.now() - timedelta(minutes=10)])

    class LateClock:
        @staticmethod
        def now():
            return next(stamps, None) or timezone.now()

    monkeypatch.setattr(revocation, "timezone", LateClock)
    # As if made by another process: this one's own mark must not answer for it.
    monkeypatch.setattr(guard, "mark_revoked", lambda sids: None)

    def revoke_in_an_outer_transaction():
        with transaction.atomic():  # e.g. an admin view, a user.delete()
            revocation.user_sessions_revoke(user_id=alice.pk, reason="test")

    await db(revoke_in_an_outer_transaction)
    await guard.poll_once()
    assert guard.is_revoked(tokens.session.sid)


def _expire(session: AuthSession) -> None:
    AuthSession.objects.filter(pk=session.pk).update(expires_at=timezone.now())


def _deactivate_quietly(session: AuthSession) -> None:
    """`update()` fires no signal: the session stays, its user is inactive."""
    type(session.user).objects.filter(pk=session.user_id).update(is_active=False)


def _forget(session: AuthSession) -> None:
    """The token's sid is in no row (a restored backup; deleting a row revokes it)."""
    AuthSession.objects.filter(pk=session.pk).update(sid=f"gone-{session.pk}")


@pytest.mark.parametrize(
    "spoil, reason",
    [
        (revoke_as_another_process, Refusal.REVOKED),
        (_expire, Refusal.EXPIRED),
        (_deactivate_quietly, Refusal.USER_INACTIVE),
        (_forget, Refusal.UNKNOWN),
    ],
)
async def test_a_refusal_says_what_happened(alice, open_session, spoil, reason):
    tokens = await db(open_session, alice)
    await db(spoil, tokens.session)
    with pytest.raises(SessionRefused) as refused_with:
        await guard.check(sid=tokens.session.sid, user_id=alice.pk)
    assert refused_with.value.reason == reason


async def test_a_session_of_another_user_is_refused_as_such(alice, bob, open_session):
    tokens = await db(open_session, alice)
    with pytest.raises(SessionRefused) as refused_with:
        await guard.check(sid=tokens.session.sid, user_id=bob.pk)
    assert refused_with.value.reason == Refusal.WRONG_USER


async def test_the_refusal_log_names_the_reason(ws, alice, open_session, caplog):
    tokens = await db(open_session, alice)
    await db(_expire, tokens.session)
    with caplog.at_level(logging.INFO):
        assert await refused(ws(f"token={tokens.access}"))
    assert "websocket refused: session refused: expired" in caplog.text


async def test_a_failing_listener_spares_the_others_and_the_poll(
    alice, open_session, monkeypatch
):
    tokens = await db(open_session, alice)
    heard = []

    async def failing(sids):
        raise RuntimeError("listener bug")

    async def recording(sids):
        heard.append(sids)

    monkeypatch.setattr(guard, "_listeners", [])
    guard.subscribe(failing)
    guard.subscribe(recording)
    await db(revoke_as_another_process, tokens.session)
    await guard.poll_once()
    assert heard == [[tokens.session.sid]]
    assert guard.is_revoked(tokens.session.sid)
