"""The server API (docs/protocol.md §7) against hostile callers and races.

Bodies of every wrong shape answer a documented status and code, never a
500; a repeated `Idempotency-Key` answers the first message whatever the
repeat sends; two PostgreSQL sessions racing on one key store one message;
a user's connections and revocation count every socket of every session.
"""

import asyncio
import contextlib
import json

import pytest
from rest_framework.test import APIClient

from accounts.models import AuthSession, ServiceKey
from accounts.service_keys import service_key_create
from realtime.models import IdempotentPublish, Message
from realtime.protocol import CloseCode
from realtime.tests.sockets import close_code, db, welcomed
from tests.db_scripts import (
    blocked_on_a_lock,
    migrated_database,
    scripts_started,
    stream_rows,
)
from tests.servers import alice_rooms, manage

PUBLISH = "/api/server/publish"
JSON = "application/json"


@pytest.fixture
def key(db):
    return service_key_create(name="backend")[1]


def server(raw_key: str) -> APIClient:
    client = APIClient(REMOTE_ADDR="10.0.0.1")
    client.credentials(HTTP_AUTHORIZATION=f"ApiKey {raw_key}")
    return client


def post(client: APIClient, body: bytes, content_type: str = JSON, **headers):
    return client.generic("POST", PUBLISH, body, content_type=content_type, **headers)


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code, response.content


# --- hostile bodies: a documented status, never a 500 --------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"not json", JSON, 400, "parse_error"),
        (b"\xef\xbb\xbf{}", JSON, 400, "parse_error"),  # a byte-order mark
        (b'{"stream": "room:lobby"}\xff', JSON, 400, "parse_error"),
        (b'{"stream": "room:lobby", "data": 1e400}', JSON, 400, "parse_error"),
        (b'{"stream": "room:lobby", "data": ' + b"9" * 5000 + b"}", JSON, 400, "parse_error"),
        (b'{"data": ' + b"[" * 5000 + b"]" * 5000 + b"}", JSON, 400, "parse_error"),
        (b'{"stream": "room:lobby", "data": 1}', "text/plain", 415, "unsupported_media_type"),
        (b"stream=room:lobby&data=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b"null", JSON, 400, "invalid"),
        (b'"room:lobby"', JSON, 400, "invalid"),
        (b"[]", JSON, 400, "invalid"),
        (b'{"stream": true, "data": 1}', JSON, 400, "invalid"),
        (b'{"stream": {"a": 1}, "data": 1}', JSON, 400, "invalid"),
        (b'{"stream": "room:lobby", "data": "\\ud800"}', JSON, 400, "invalid"),
        (b'{"stream": "room:lobby", "data": {"\\udfff": 1}}', JSON, 400, "invalid"),
        (b'{"stream": "room:lobby", "data": {"a\\u0000": 1}}', JSON, 400, "invalid"),
        (b'{"stream": "room:\xef\xbd\x8cobby", "data": 1}', JSON, 404, "not_found"),
        (b'{"stream": "user:\xd9\xa1", "data": 1}', JSON, 404, "not_found"),
        (b'{"stream": "user:9223372036854775808", "data": 1}', JSON, 404, "not_found"),
        (b'{"stream": "' + b"a" * 100_000 + b'", "data": 1}', JSON, 404, "not_found"),
        (b'{"stream": "room:lobby", "data": "' + b"x" * 3_000_000 + b'"}', JSON, 400, "bad_request"),
    ],
)  # fmt: skip
def test_hostile_bodies_answer_their_documented_status(
    key, rooms, body, content_type, status, code
):
    assert_error(post(server(key), body, content_type), status, code)
    assert Message.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_odd_unicode_and_extra_fields_are_stored_as_sent(key, rooms):
    body = (
        b'{"stream": "room:lobby", "extra": 1,'
        b' "data": {"\xf0\x9f\x98\x80\xcc\x81": "\\u202e\\ufeff\\udbff\\udfff"}}'
    )
    response = post(server(key), body)
    assert response.status_code == 201, response.content
    sent = {"\U0001f600\u0301": "\u202e\ufeff\U0010ffff"}
    assert response.json()["data"] == sent
    history = server(key).get("/api/server/streams/room:lobby/messages").json()
    assert [message["data"] for message in history] == [sent]


# --- idempotency: a repeat is answered before its body is read -----------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"stream": "room:lobby", "data": 1}', "text/plain"),
        (b"stream=room:nowhere", "application/x-www-form-urlencoded"),
        (b"--x--", "multipart/form-data; boundary=x"),
    ],
)
def test_a_repeat_in_another_media_type_still_answers_the_first_message(
    key, rooms, body, content_type
):
    """§7: the first message is answered whatever the repeated body holds;
    a repeat's body is never read, so its media type cannot matter (415)."""
    first = post(
        server(key), b'{"stream": "room:lobby", "data": 1}', HTTP_IDEMPOTENCY_KEY="k"
    )
    assert first.status_code == 201
    again = post(server(key), body, content_type, HTTP_IDEMPOTENCY_KEY="k")
    assert (again.status_code, again.json()) == (200, first.json())
    assert Message.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_repeat_sent_as_json_must_still_be_strict_json(key, rooms):
    """§2.1 holds for every JSON body, read or not: 400 `parse_error`."""
    post(server(key), b'{"stream": "room:lobby", "data": 1}', HTTP_IDEMPOTENCY_KEY="k")
    for body in (b"not json", b'{"stream": "room:lobby", "data": NaN}'):
        again = post(server(key), body, HTTP_IDEMPOTENCY_KEY="k")
        assert_error(again, 400, "parse_error")
    assert Message.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_unused_key_with_a_body_in_another_media_type_is_415(key, rooms):
    body = b'{"stream": "room:lobby", "data": 1}'
    refused = post(server(key), body, "text/plain", HTTP_IDEMPOTENCY_KEY="new")
    assert_error(refused, 415, "unsupported_media_type")
    ok = post(server(key), body, HTTP_IDEMPOTENCY_KEY="new")
    assert ok.status_code == 201  # the refused body stored nothing under the key


# --- idempotency on PostgreSQL: two sessions, one key --------------------------

HOLD = """
import sys
from django.db import transaction
from accounts.models import ServiceKey
from realtime.server_api import server_publish
key = ServiceKey.objects.get(name={service!r})
with transaction.atomic():
    answer, created = server_publish(
        service_key=key, name={stream!r}, data="held", idempotency_key={key!r}
    )
    print(answer["id"], created, flush=True)
    if sys.stdin.readline().strip() == "rollback":
        transaction.set_rollback(True)
print("done", flush=True)
"""

PUBLISH_ONCE = """
from accounts.models import ServiceKey
from realtime.server_api import server_publish
key = ServiceKey.objects.get(name={service!r})
answer, created = server_publish(
    service_key=key, name={stream!r}, data="second", idempotency_key={key!r}
)
print(answer["stream"], answer["id"], answer["data"], created, flush=True)
"""

AGE_KEYS = """
from datetime import timedelta
from django.utils import timezone
from realtime.models import IdempotentPublish
IdempotentPublish.objects.update(created_at=timezone.now() - timedelta(days=2))
"""


@pytest.fixture(scope="module")
def database():
    """A migrated PostgreSQL database with a service key: (env, dsn)."""
    with migrated_database(
        ("demo_data",), ("service_key", "create", "racer")
    ) as env_and_dsn:
        yield env_and_dsn


@pytest.fixture
def scripts():
    with scripts_started() as start:
        yield start


def race(scripts, env, dsn, *, first: str, second: str, key: str):
    """The first publish under `key` holds its transaction; the second, on
    another stream, must wait for it. Returns (holder, its id, the second)."""
    holder = scripts(env, HOLD.format(service="racer", stream=first, key=key))
    held_id, created = holder.line().split()
    assert created == "True"
    rival = scripts(env, PUBLISH_ONCE.format(service="racer", stream=second, key=key))
    blocked_on_a_lock(dsn)
    return holder, int(held_id), rival


@pytest.mark.services
def test_two_sessions_racing_on_one_key_store_one_message(database, scripts):
    env, dsn = database
    first, second = alice_rooms(env, ["race-a", "race-b"])
    holder, held_id, rival = race(
        scripts, env, dsn, first=first, second=second, key="k1"
    )
    holder.release()
    assert holder.line() == "done"
    assert rival.line() == f"{first} {held_id} held False"
    holder.finish()
    rival.finish()
    assert stream_rows(dsn, first) == ([held_id], held_id)
    assert stream_rows(dsn, second)[0] == []  # the loser's message rolled back


@pytest.mark.services
def test_a_first_use_that_rolls_back_leaves_the_key_to_the_other(database, scripts):
    env, dsn = database
    first, second = alice_rooms(env, ["undo-a", "undo-b"])
    holder, _, rival = race(scripts, env, dsn, first=first, second=second, key="k2")
    holder.process.stdin.write("rollback\n")
    holder.process.stdin.flush()
    assert holder.line() == "done"
    assert rival.line() == f"{second} 1 second True"
    holder.finish()
    rival.finish()
    assert stream_rows(dsn, first)[0] == []


@pytest.mark.services
def test_two_sessions_reusing_an_expired_key_store_one_new_message(database, scripts):
    env, dsn = database
    old, first, second = alice_rooms(env, ["aged-0", "aged-a", "aged-b"])
    scripts(env, PUBLISH_ONCE.format(service="racer", stream=old, key="k3")).finish()
    manage(env, "shell", "-c", AGE_KEYS)
    holder, held_id, rival = race(
        scripts, env, dsn, first=first, second=second, key="k3"
    )
    holder.release()
    assert rival.line() == f"{first} {held_id} held False"
    holder.finish()
    rival.finish()
    assert stream_rows(dsn, second)[0] == []


# --- connections and revoke with several sockets per session -------------------


async def socket_of(ws, access: str):
    communicator = ws(f"token={access}")
    await welcomed(communicator)
    return communicator


@pytest.mark.django_db(transaction=True)
async def test_connections_and_revoke_count_every_socket_of_every_session(
    ws, key, alice, bob, open_session
):
    first, second = await db(open_session, alice), await db(open_session, alice)
    await db(open_session, alice)  # a session without a socket
    bobs = await db(open_session, bob)
    sockets = [
        await socket_of(ws, first.access),
        await socket_of(ws, first.access),
        await socket_of(ws, second.access),
    ]
    other = await socket_of(ws, bobs.access)
    try:
        path = f"/api/server/users/{alice.pk}/connections"
        body = (await db(server(key).get, path)).json()
        assert body["connections"] == 3
        assert sorted(
            (session["id"], session["connections"]) for session in body["sessions"]
        ) == sorted([(first.session.sid, 2), (second.session.sid, 1)])
        revoke = await db(server(key).post, f"/api/server/users/{alice.pk}/revoke")
        assert revoke.json() == {"revoked": 3}
        for socket in sockets:
            assert (await close_code(socket, timeout=2))[0] == CloseCode.REVOKED
            await socket.disconnect()  # as daphne reports a closed socket
        after = (await db(server(key).get, path)).json()
        assert after == {"connections": 0, "sessions": []}
        bob_path = f"/api/server/users/{bob.pk}/connections"
        assert (await db(server(key).get, bob_path)).json()["connections"] == 1
        live = AuthSession.objects.filter(user=bob).live().count
        assert await db(live) == 1
    finally:
        for socket in (*sockets, other):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await socket.disconnect()


# --- the Idempotency-Key is the field value HTTP defines ------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("spelled", [" k", "k ", "\tk\t", "  k  "])
def test_whitespace_around_a_key_is_not_part_of_it(key, rooms, spelled):
    """RFC 9110 §5.5: a field value has no leading or trailing whitespace.
    daphne strips it before Django sees it; the view must too, or `k` and
    ` k` are two keys (two messages) behind a server that hands it over."""
    body = b'{"stream": "room:lobby", "data": 1}'
    first = post(server(key), body, HTTP_IDEMPOTENCY_KEY="k")
    again = post(server(key), body, HTTP_IDEMPOTENCY_KEY=spelled)
    assert (again.status_code, again.json()) == (200, first.json())
    assert Message.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_key_of_whitespace_alone_is_400_invalid(key, rooms):
    refused = post(
        server(key),
        b'{"stream": "room:lobby", "data": 1}',
        HTTP_IDEMPOTENCY_KEY="  \t ",
    )
    assert_error(refused, 400, "invalid")
    assert "Idempotency-Key" in refused.json()["errors"]
    assert Message.objects.count() == 0


# --- streams of every kind -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_every_kind_answers_as_documented(key, alice, rooms, test_kinds):
    """Built-in and project kinds, keys with slashes in the URL, a kind that
    takes no publishes: refusals store nothing, not even the key."""
    backend = server(key)

    def publish(stream: str, key: str | None = None):
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        body = json.dumps({"stream": stream, "data": stream}).encode()
        return post(backend, body, **headers)

    for stream in ("room:lobby", f"user:{alice.pk}", "note:n1", "tick:a b", "path:a/b"):
        response = publish(stream)
        assert (response.status_code, response.json()["stream"]) == (201, stream)
    assert_error(publish("feed:1", key="f"), 403, "forbidden")
    for stream in ("feed:404", "nope:1", "user", "room:nowhere", "path:a//b"):
        assert_error(publish(stream, key="f"), 404, "not_found")
    assert publish("room:lobby", key="f").status_code == 201  # "f" was unused
    history = backend.get("/api/server/streams/path:a/b/messages")
    assert [m["data"] for m in history.json()] == ["path:a/b"]
    presence = backend.get("/api/server/streams/path:a/b/presence").json()
    assert presence == {"stream": "path:a/b", "users": [], "count": 0}
    for path in ("streams/tick:a b/messages", "streams/note:n1/presence"):
        assert_error(backend.get(f"/api/server/{path}"), 404, "not_found")


# --- a key stored before answers were, whose message was pruned since ----------


@pytest.mark.django_db(transaction=True)
def test_a_key_left_with_nothing_to_answer_publishes_again_not_500(key, rooms):
    """Rows stored before migration 0005 carry no answer; once retention
    prunes their message they answer nothing, yet hold the key's unique
    slot: the publish that took the key again hit it and answered 500."""
    service_key = ServiceKey.objects.get()
    IdempotentPublish.objects.create(service_key=service_key, key="old", answer=None)
    body = b'{"stream": "room:lobby", "data": 1}'
    client = server(key)
    client.raise_request_exception = False
    first = post(client, body, HTTP_IDEMPOTENCY_KEY="old")
    assert first.status_code == 201, first.content
    again = post(client, body, HTTP_IDEMPOTENCY_KEY="old")
    assert (again.status_code, again.json()) == (200, first.json())
    assert Message.objects.count() == 1
