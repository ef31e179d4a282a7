"""A room, a user or a service key deleted while a request that checked it
writes, on PostgreSQL.

A join or a publish reads the room and the user (a keyed server publish, its
service key), then inserts a row that refers to them. A deletion committing
in between left that insert with a foreign key to nothing: an IntegrityError
at commit, answered 500. Each test forces that order between two processes (`tests.db_scripts`): the deletion
holds its transaction open until the writer is seen waiting on its lock.
"""

import json
import uuid

import pytest

from tests.db_scripts import blocked_on_a_lock

on_postgres = pytest.mark.services

SETUP = """
import json
from accounts.models import User
from accounts.services import session_open
from realtime.models import Room
from realtime.services import membership_create
user = User.objects.create_user(username={username!r}, password="pw-racer-1234")
room = Room.objects.create(slug={slug!r}, title="Racing", public=True)
member = Room.objects.create(slug={slug!r} + "-m", title="Member", public=True)
membership_create(user=user, room=member)
print(json.dumps({{"user": user.pk, "access": session_open(user=user).access,
    "room": room.slug, "member": member.slug}}), flush=True)
"""

# Runs `{action}` in a transaction kept open until the test releases it.
HOLD = """
import sys
from django.db import transaction
from accounts.models import User
from realtime.models import Room
with transaction.atomic():
    {action}
    print("held", flush=True)
    sys.stdin.readline()
print("committed", flush=True)
"""

# Prints what `{call}` came to: an HTTP answer's status, code and challenge;
# a socket's publish, the message id or None (answered `forbidden`).
ACT = """
from rest_framework.test import APIClient
from accounts.models import User
from realtime.stream_frames import _publish_checked
from realtime.streams import room_stream
api = APIClient(HTTP_AUTHORIZATION="Bearer {access}", HTTP_HOST="localhost")
def answer(path, body=None):
    got = api.post(path, body, format="json", secure=True)
    challenge = got.headers.get("WWW-Authenticate", "-").split()[0]
    print(got.status_code, got.json().get("code"), challenge, flush=True)
def socket_publish():
    published = _publish_checked(User.objects.get(pk={user}), room_stream({target!r}), 1)
    print(published and published.message.seq, flush=True)
{call}
"""

JOIN = "answer('/api/rooms/{target}/membership')"
PUBLISH = "answer('/api/rooms/{target}/messages', {{'data': 1}})"
DELETE_ROOM = "Room.objects.get(slug={target!r}).delete()"
DELETE_USER = "User.objects.get(pk={user}).delete()"

RACES = {
    # A join of a room being deleted: the room is gone, as for any other.
    "join-room-deleted": (DELETE_ROOM, JOIN, "room", "404 not_found -"),
    # A write by a user being deleted: his token is revoked.
    "join-user-deleted": (DELETE_USER, JOIN, "room", "401 revoked Bearer"),
    "publish-user-deleted": (DELETE_USER, PUBLISH, "member", "401 revoked Bearer"),
    # On a socket, `forbidden`: its 4403 follows from the deletion.
    "socket-publish-user-deleted": (DELETE_USER, "socket_publish()", "member", "None"),
}


def made(scripts) -> dict:
    slug = f"race-{uuid.uuid4().hex[:8]}"
    setup = scripts(SETUP.format(username=slug, slug=slug))
    rows = json.loads(setup.line())
    setup.finish()
    return rows


@on_postgres
@pytest.mark.parametrize("race", sorted(RACES))
def test_a_write_waiting_on_a_deletion_is_a_typed_refusal(database, scripts, race):
    """The writer waits for the deletion, then is answered as for a missing
    room (404) or a deleted user's token (401 `revoked`; `forbidden` on a
    socket): never a 500 from an IntegrityError."""
    _, dsn = database
    deletion, call, target, expected = RACES[race]
    rows = made(scripts)
    ids = {"user": rows["user"], "access": rows["access"], "target": rows[target]}
    deleter = scripts(HOLD.format(action=deletion.format(**ids)))
    assert deleter.line() == "held"
    writer = scripts(ACT.format(call=call.format(**ids), **ids))
    blocked_on_a_lock(dsn)
    deleter.release()
    assert deleter.line() == "committed"
    deleter.finish()
    assert writer.line() == expected
    writer.finish()


KEY_SETUP = """
import json
from accounts.service_keys import service_key_create
from realtime.models import Room
Room.objects.create(slug={slug!r}, title="Keyed", public=True)
key, raw = service_key_create(name={slug!r})
print(json.dumps({{"key": key.pk, "raw": raw}}), flush=True)
"""

KEYED_PUBLISH = """
from rest_framework.test import APIClient
api = APIClient(HTTP_AUTHORIZATION="ApiKey {raw}", HTTP_HOST="localhost",
    HTTP_IDEMPOTENCY_KEY="race-1")
got = api.post("/api/server/publish", {{"stream": "room:{slug}", "data": 1}},
    format="json", secure=True)
challenge = got.headers.get("WWW-Authenticate", "-").split()[0]
print(got.status_code, got.json().get("code"), challenge, flush=True)
"""


@on_postgres
def test_a_keyed_publish_whose_service_key_is_deleted_meanwhile_is_refused(
    database, scripts
):
    """A publish with an Idempotency-Key stores a row that refers to its
    service key: deleted meanwhile (from the shell; the admin only revokes),
    that row fails at commit. The caller is answered as for a key that no
    longer exists (401 `invalid_key`), never 500."""
    _, dsn = database
    slug = f"keyed-{uuid.uuid4().hex[:8]}"
    setup = scripts(KEY_SETUP.format(slug=slug))
    rows = json.loads(setup.line())
    setup.finish()
    delete = f"from accounts.models import ServiceKey\n    ServiceKey.objects.filter(pk={rows['key']}).delete()"
    deleter = scripts(HOLD.format(action=delete))
    assert deleter.line() == "held"
    writer = scripts(KEYED_PUBLISH.format(raw=rows["raw"], slug=slug))
    blocked_on_a_lock(dsn)
    deleter.release()
    assert deleter.line() == "committed"
    deleter.finish()
    assert writer.line() == "401 invalid_key ApiKey"
    writer.finish()
