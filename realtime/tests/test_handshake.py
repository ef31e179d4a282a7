"""The handshake (docs/protocol.md §4.1): refused before accept unless fully valid."""

import threading
import time

import pytest
from django.db.backends.utils import CursorWrapper

from accounts.revocation import session_revoke
from accounts.tokens import encode_access
from realtime.session_guard import guard
from realtime.tests.sockets import db, refused, welcomed
from tests.sessions import revoke_as_another_process

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def test_valid_token_is_welcomed_with_user_and_session(ws, alice, open_session):
    tokens = await db(open_session, alice)
    communicator = ws(f"token={tokens.access}")
    frame = await welcomed(communicator)
    assert frame == {
        "type": "welcome",
        "user": {"id": alice.pk, "username": "alice"},
        "session": tokens.session.sid,
        "expires_at": tokens.access_expires_at,
        "protocol": "1.1",
    }
    await communicator.send_json_to({"type": "ping", "ref": 7})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong", "ref": 7}
    await communicator.disconnect()


async def test_no_token_is_refused_before_accept(ws):
    assert await refused(ws())


@pytest.mark.parametrize(
    "query",
    [
        "token=",
        "token=garbage",
        "token=a.b.c",
        "token=" + "x" * 5000,
        "ticket=",
        "ticket=nope",
    ],
)
async def test_bad_credentials_are_refused_before_accept(ws, query):
    assert await refused(ws(query))


async def test_expired_token_is_refused_before_accept(
    ws, alice, open_session, settings
):
    settings.AUTHSOCKET_LEEWAY = 0
    tokens = await db(open_session, alice, access_ttl=-1)
    assert await refused(ws(f"token={tokens.access}"))


async def test_token_of_deleted_user_is_refused(ws, alice, open_session):
    tokens = await db(open_session, alice)
    await db(alice.delete)
    assert await refused(ws(f"token={tokens.access}"))


async def test_token_of_inactive_user_is_refused(ws, alice, open_session):
    tokens = await db(open_session, alice)
    alice.is_active = False
    await db(alice.save)
    assert await refused(ws(f"token={tokens.access}"))


async def test_token_of_revoked_session_is_refused(ws, alice, open_session):
    tokens = await db(open_session, alice)
    await db(session_revoke, session=tokens.session, reason="test")
    assert await refused(ws(f"token={tokens.access}"))


async def test_token_of_unknown_session_is_refused(ws, alice):
    token, _ = encode_access(user_id=alice.pk, sid="never-opened")
    assert await refused(ws(f"token={token}"))


async def test_token_with_another_users_id_is_refused(ws, alice, bob, open_session):
    tokens = await db(open_session, alice)
    forged, _ = encode_access(user_id=bob.pk, sid=tokens.session.sid)
    assert await refused(ws(f"token={forged}"))


async def test_repeated_token_parameter_is_refused(ws, alice, open_session):
    tokens = await db(open_session, alice)
    assert await refused(ws(f"token={tokens.access}&token={tokens.access}"))


async def test_query_token_can_be_switched_off(ws, alice, open_session, settings):
    settings.AUTHSOCKET_QUERY_TOKEN = False
    tokens = await db(open_session, alice)
    assert await refused(ws(f"token={tokens.access}"))


async def test_unknown_path_is_refused(ws, alice, open_session):
    tokens = await db(open_session, alice)
    assert await refused(ws(f"token={tokens.access}", path="/elsewhere/"))


@pytest.mark.parametrize(
    "origin, allowed",
    [
        ("http://localhost:8000", True),
        ("https://127.0.0.1", True),
        ("http://evil.example", False),
        ("null", False),
        ("ftp://localhost", False),
        ("http://localhost:notaport", False),
    ],
)
async def test_origin_is_checked(ws, alice, open_session, origin, allowed):
    tokens = await db(open_session, alice)
    communicator = ws(f"token={tokens.access}", headers=[("origin", origin)])
    connected, _ = await communicator.connect(timeout=5)
    assert connected is allowed
    if connected:
        await communicator.disconnect()


async def test_missing_origin_is_allowed(ws, alice, open_session):
    tokens = await db(open_session, alice)
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)
    await communicator.disconnect()


async def test_configured_allowed_origins_replace_the_default(
    ws, alice, open_session, settings
):
    settings.AUTHSOCKET_ALLOWED_ORIGINS = ["https://app.example.com"]
    tokens = await db(open_session, alice)
    assert await refused(
        ws(f"token={tokens.access}", headers=[("origin", "http://localhost")])
    )
    communicator = ws(
        f"token={tokens.access}", headers=[("origin", "https://app.example.com")]
    )
    await welcomed(communicator)
    await communicator.disconnect()


class QueryLog:
    """Records SQL on every thread (the database and guard threads included);
    pytest-django's `django_assert_num_queries` only sees the test's thread."""

    def __init__(self, monkeypatch):
        self.statements: list[str] = []
        self._lock = threading.Lock()
        original = CursorWrapper._execute

        def recording(cursor, sql, *args, **kwargs):
            with self._lock:
                self.statements.append(sql)
            return original(cursor, sql, *args, **kwargs)

        monkeypatch.setattr(CursorWrapper, "_execute", recording)

    def session_lookups(self) -> int:
        """Handshake lookups by sid (the watcher's poll reads by time instead)."""
        return sum('"accounts_authsession"."sid" IN' in sql for sql in self.statements)


async def test_handshake_of_a_new_session_costs_one_query_then_none(
    ws, alice, open_session, monkeypatch, settings
):
    settings.AUTHSOCKET_REVOCATION_POLL = 60  # this test drives the polls itself
    await guard.poll_once()
    tokens = await db(open_session, alice)  # opened after the poll: unknown
    queries = QueryLog(monkeypatch)
    first = ws(f"token={tokens.access}")
    await welcomed(first)
    assert queries.session_lookups() == 1  # session and user in one join
    await guard.poll_once()  # keeps the cache trusted
    second = ws(f"token={tokens.access}")
    await welcomed(second)
    assert queries.session_lookups() == 1  # answered from memory
    await first.disconnect()
    await second.disconnect()


async def test_sessions_used_recently_are_known_before_their_first_handshake(
    ws, alice, open_session, monkeypatch, settings
):
    settings.AUTHSOCKET_REVOCATION_POLL = 60
    tokens = await db(open_session, alice)
    await guard.poll_once()  # learns the sessions used within a token lifetime
    queries = QueryLog(monkeypatch)
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)
    assert queries.session_lookups() == 0
    await communicator.disconnect()


async def test_cached_session_is_refused_within_a_second_of_revocation(
    ws, alice, open_session
):
    """A revocation made elsewhere (no channel message) reaches the cache by the poll."""
    tokens = await db(open_session, alice)
    await guard.poll_once()
    communicator = ws(f"token={tokens.access}")
    await welcomed(communicator)  # now cached and trusted
    await communicator.disconnect()

    await db(revoke_as_another_process, tokens.session)
    committed = time.monotonic()
    while True:  # no event to await across "processes": retry, bounded by 1 s
        attempt = ws(f"token={tokens.access}")
        if await refused(attempt):
            break
        await attempt.disconnect()
        assert time.monotonic() - committed < 1.0, "still accepted a second later"
