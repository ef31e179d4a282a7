"""A socket lives exactly as long as its access token (docs/protocol.md §4.2–4.3).

3-second tokens: `auth.expiring` arrives min(30 s, TTL/3) before `exp`, the
socket closes 4401 at `exp` + leeway, an `auth` frame of the same session moves
that moment, anything else leaves it where it was.
"""

import asyncio
import time

import pytest
from django.utils import timezone

from accounts.models import AuthSession
from accounts.revocation import session_revoke
from accounts.tokens import encode_access
from realtime import base_consumer, session_guard
from realtime.expiry import ExpiryTimer
from realtime.protocol import CloseCode, ErrorCode, ServerFrame
from realtime.tests.sockets import close_code, db, still_open, welcomed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

TTL = 3
LEEWAY = 1


@pytest.fixture
def short_tokens(settings):
    settings.AUTHSOCKET_ACCESS_TTL = TTL
    settings.AUTHSOCKET_LEEWAY = LEEWAY


async def test_expiring_warning_then_close_4401_after_expiry(
    ws, alice, open_session, short_tokens
):
    tokens = await db(open_session, alice)
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)
    warning = await communicator.receive_json_from(timeout=TTL + 1)
    warned_at = time.time()
    assert warning == {
        "type": ServerFrame.AUTH_EXPIRING,
        "expires_at": tokens.access_expires_at,
    }
    # TTL/3 = 1 s before exp (timer granularity aside), never after it.
    assert tokens.access_expires_at - 1.2 <= warned_at < tokens.access_expires_at
    code, closed_at = await close_code(communicator, timeout=TTL + LEEWAY + 2)
    assert code == CloseCode.TOKEN_EXPIRED
    assert closed_at >= tokens.access_expires_at + LEEWAY - 0.05
    await communicator.disconnect()


async def test_auth_frame_renewal_keeps_the_socket_open_past_the_first_expiry(
    ws, alice, open_session, short_tokens
):
    tokens = await db(open_session, alice)
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)
    renewed, renewed_exp = encode_access(
        user_id=alice.pk, sid=tokens.session.sid, ttl=TTL + 3
    )
    await communicator.send_json_to({"type": "auth", "token": renewed, "ref": 1})
    assert await communicator.receive_json_from(timeout=5) == {
        "type": ServerFrame.AUTH_OK,
        "expires_at": renewed_exp,
        "ref": 1,
    }
    first_deadline = tokens.access_expires_at + LEEWAY
    await asyncio.sleep(max(0.0, first_deadline + 0.3 - time.time()))  # a deadline
    assert await still_open(communicator)
    code, closed_at = await close_code(
        communicator, timeout=renewed_exp - time.time() + LEEWAY + 2
    )
    assert code == CloseCode.TOKEN_EXPIRED
    assert closed_at >= renewed_exp + LEEWAY - 0.05
    await communicator.disconnect()


async def test_auth_expiring_is_sent_once_per_expiry(
    ws, alice, open_session, short_tokens
):
    """The same token again after the warning: `auth.ok`, no second warning for
    that `exp`; a token expiring later is warned of in its own time."""
    tokens = await db(open_session, alice)
    exp = tokens.access_expires_at
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)
    assert await communicator.receive_json_from(timeout=TTL + 1) == {
        "type": ServerFrame.AUTH_EXPIRING,
        "expires_at": exp,
    }
    await communicator.send_json_to({"type": "auth", "token": tokens.access})
    assert await communicator.receive_json_from(timeout=5) == {
        "type": ServerFrame.AUTH_OK,
        "expires_at": exp,
    }
    later, later_exp = encode_access(user_id=alice.pk, sid=tokens.session.sid, ttl=TTL)
    assert later_exp > exp
    await communicator.send_json_to({"type": "auth", "token": later, "ref": "later"})
    # Next: its answer; a second warning for `exp` would come first.
    assert await communicator.receive_json_from(timeout=5) == {
        "type": ServerFrame.AUTH_OK,
        "expires_at": later_exp,
        "ref": "later",
    }
    assert await communicator.receive_json_from(timeout=TTL + 1) == {
        "type": ServerFrame.AUTH_EXPIRING,
        "expires_at": later_exp,
    }
    # Then nothing but the close, at the later expiry.
    closing = await communicator.receive_output(timeout=TTL + LEEWAY + 2)
    assert closing == {"type": "websocket.close", "code": CloseCode.TOKEN_EXPIRED}
    assert time.time() >= later_exp + LEEWAY - 0.05
    await communicator.disconnect()


async def test_renewal_with_another_users_token_fails_and_the_old_expiry_stands(
    ws, alice, bob, open_session, short_tokens
):
    tokens = await db(open_session, alice)
    bobs = await db(open_session, bob, access_ttl=60)
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)
    await communicator.send_json_to({"type": "auth", "token": bobs.access, "ref": 2})
    error = await communicator.receive_json_from(timeout=5)
    assert error["type"] == ServerFrame.ERROR
    assert error["code"] == ErrorCode.INVALID_TOKEN
    assert error["ref"] == 2
    code, closed_at = await close_code(communicator, timeout=TTL + LEEWAY + 2)
    assert code == CloseCode.TOKEN_EXPIRED
    assert closed_at < tokens.access_expires_at + LEEWAY + 1.0  # on time
    await communicator.disconnect()


@pytest.mark.parametrize(
    "case", ["other session of the same user", "garbage", "expired"]
)
async def test_renewal_with_a_bad_token_is_invalid_token(
    ws, alice, open_session, settings, case
):
    tokens = await db(open_session, alice)
    other = await db(open_session, alice)
    token = {
        "other session of the same user": other.access,
        "garbage": "not.a.jwt",
        "expired": encode_access(user_id=alice.pk, sid=tokens.session.sid, ttl=-3600)[
            0
        ],
    }[case]
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)
    await communicator.send_json_to({"type": "auth", "token": token})
    error = await communicator.receive_json_from(timeout=5)
    assert (error["type"], error["code"]) == (
        ServerFrame.ERROR,
        ErrorCode.INVALID_TOKEN,
    )
    assert await still_open(communicator)
    await communicator.disconnect()


async def test_renewal_rechecks_the_session_and_closes_4403_when_revoked(
    ws, alice, open_session, monkeypatch
):
    # Cached sessions expire at once: the `auth` frame must ask the database.
    monkeypatch.setattr(session_guard, "ENTRY_TTL", 0.0)
    tokens = await db(open_session, alice)
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)
    renewed, _ = encode_access(user_id=alice.pk, sid=tokens.session.sid)
    # Revoked in the sessions table only: no log row for the poll, no channel
    # message, no local mark, so only the `auth` frame's own re-check can see it.
    await db(
        AuthSession.objects.filter(pk=tokens.session.pk).update,
        revoked_at=timezone.now(),
    )
    await communicator.send_json_to({"type": "auth", "token": renewed})
    code, _ = await close_code(communicator, timeout=2)
    assert code == CloseCode.REVOKED
    await communicator.disconnect()


class RecordingTimer(ExpiryTimer):
    """Keeps every TimerHandle it ever armed, for the test to inspect."""

    created: list["RecordingTimer"] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.armed: list[asyncio.TimerHandle] = []
        RecordingTimer.created.append(self)

    def _arm(self, delay: float, callback, *args) -> None:
        super()._arm(delay, callback, *args)
        self.armed.append(self._handle)


@pytest.fixture
def recording_timers(monkeypatch):
    RecordingTimer.created = []
    monkeypatch.setattr(base_consumer, "ExpiryTimer", RecordingTimer)
    return RecordingTimer.created


async def test_one_timer_per_socket_cancelled_on_disconnect(
    ws, alice, open_session, recording_timers
):
    tokens = await db(open_session, alice)
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)
    [timer] = recording_timers
    assert len(timer.armed) == 1  # auth.expiring's; it arms the close; nothing else
    renewed, _ = encode_access(user_id=alice.pk, sid=tokens.session.sid)
    await communicator.send_json_to({"type": "auth", "token": renewed})
    await communicator.receive_json_from(timeout=5)
    assert len(timer.armed) == 2
    assert timer.armed[0].cancelled()  # re-armed
    assert not timer.armed[1].cancelled()
    await communicator.disconnect()
    assert all(handle.cancelled() for handle in timer.armed)


async def test_revoked_socket_cancels_its_timers(
    ws, alice, open_session, recording_timers
):
    tokens = await db(open_session, alice)
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)
    await db(session_revoke, session=tokens.session, reason="test")
    code, _ = await close_code(communicator, timeout=2)
    assert code == CloseCode.REVOKED
    await communicator.disconnect()
    assert all(handle.cancelled() for handle in recording_timers[0].armed)


async def test_warning_is_immediate_when_the_token_is_already_in_its_last_third(
    settings,
):
    settings.AUTHSOCKET_ACCESS_TTL = 30
    settings.AUTHSOCKET_LEEWAY = 0
    warned, expired = asyncio.Event(), asyncio.Event()

    async def on_warning(exp):
        warned.set()

    async def on_expiry():
        expired.set()

    timer = ExpiryTimer(on_warning, on_expiry)
    timer.schedule(int(time.time()) + 2)  # 2 s left < TTL/3 = 10 s
    await asyncio.wait_for(warned.wait(), 1)
    assert not expired.is_set()
    await asyncio.wait_for(expired.wait(), 4)
    timer.cancel()


async def test_going_back_to_a_token_warned_of_is_not_warned_again(settings):
    """Renewed with B, then back with A: A's `exp` was warned of already."""
    settings.AUTHSOCKET_ACCESS_TTL = 30
    settings.AUTHSOCKET_LEEWAY = 0
    warnings: asyncio.Queue = asyncio.Queue()

    async def on_warning(exp):
        warnings.put_nowait(exp)

    async def on_expiry():
        pass

    timer = ExpiryTimer(on_warning, on_expiry)
    a, b, c = (int(time.time()) + seconds for seconds in (5, 6, 7))  # all < TTL/3
    try:
        for exp in (a, b, a, c):
            timer.schedule(exp)
        # In order of scheduling: a second warning of `a` would come before `c`'s.
        got = [await asyncio.wait_for(warnings.get(), 2) for _ in range(3)]
        assert got == [a, b, c]
    finally:
        timer.cancel()


async def test_warning_lead_follows_the_tokens_own_lifetime(
    ws, alice, open_session, settings
):
    """A 3 s token under a 300 s default is warned 1 s before exp, not at once."""
    settings.AUTHSOCKET_LEEWAY = LEEWAY
    tokens = await db(open_session, alice, access_ttl=TTL)
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)
    warning = await communicator.receive_json_from(timeout=TTL + 1)
    assert warning["type"] == ServerFrame.AUTH_EXPIRING
    assert time.time() >= tokens.access_expires_at - 1.2
    await communicator.disconnect()
