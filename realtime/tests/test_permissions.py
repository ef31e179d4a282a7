"""The authorization matrix: every kind of stream × every way to reach it.

Alice is the actor: a member of `lobby` (public) and `team` (private), not of
`plaza` (public) nor `secret` (private, bob's). The WebSocket answers exactly
`subscribed`/`published` or one identical `forbidden`; REST answers 404 for
what she may not see (unknown or not) and 403 for what she sees but may not do.
"""

from urllib.parse import quote

import pytest

from realtime.models import StreamCounter
from realtime.permissions import Access, Action, stream_access
from realtime.streams import stream_parse
from realtime.tests.conftest import db, send

pytestmark = pytest.mark.django_db(transaction=True)

FORBIDDEN_FRAME = {
    "type": "error",
    "code": "forbidden",
    "detail": "No such stream, or not allowed.",
}
NOT_FOUND = {"detail": "Not found.", "code": "not_found"}
HIDDEN = ("forbidden", "forbidden", 404, 404)
# REST posts to user streams are staff notifications: 403 before any lookup.
HIDDEN_USER = ("forbidden", "forbidden", 404, 403)

# stream name ({alice}/{bob} are filled in) → (subscribe, publish, REST read, REST post)
MATRIX = {
    "own user stream": ("user", ("subscribed", "forbidden", 200, 403)),
    "own user alias": ("user:{alice}", ("subscribed", "forbidden", 200, 403)),
    "another user's stream": ("user:{bob}", HIDDEN_USER),
    "public room, member": ("room:lobby", ("subscribed", "published", 200, 201)),
    "public room, non-member": ("room:plaza", ("subscribed", "forbidden", 200, 403)),
    "private room, member": ("room:team", ("subscribed", "published", 200, 201)),
    "private room, non-member": ("room:secret", HIDDEN),
    "unknown room": ("room:nowhere", HIDDEN),
    "empty slug": ("room:", HIDDEN),
    "path traversal": ("room:../x", HIDDEN),
    "uppercase slug": ("room:TEAM", HIDDEN),
    "slug with a space": ("room:team ", HIDDEN),
    "non-numeric user": ("user:abc", HIDDEN),
    "user id zero": ("user:0", HIDDEN_USER),
    "no prefix": ("team", HIDDEN),
    "300-char room": ("room:" + "a" * 295, HIDDEN),
    "300-char user": ("user:" + "1" * 295, HIDDEN_USER),
    "300-char name": ("x" * 300, HIDDEN),
}
CASES = [
    pytest.param(name, outcome, id=case) for case, (name, outcome) in MATRIX.items()
]


def stream_name(template: str, alice, bob) -> str:
    return template.format(alice=alice.pk, bob=bob.pk)


def rest_path(name: str, alice, *, post: bool) -> str:
    """The REST resource of a stream: room messages, or a user's messages/notify."""
    if name == "user":
        name = f"user:{alice.pk}"
    prefix, _, rest = name.partition(":")
    if prefix == "user":
        return f"/api/users/{quote(rest, safe='')}/{'notify' if post else 'messages'}"
    if prefix == "room":
        return f"/api/rooms/{quote(rest, safe='')}/messages"
    return f"/api/{quote(name, safe='')}/messages"  # names no resource answers to


@pytest.mark.asyncio
@pytest.mark.parametrize("template, outcome", CASES)
async def test_subscribe(connect, alice, bob, rooms, template, outcome):
    name = stream_name(template, alice, bob)
    socket = await connect(alice)
    answer = await send(socket, {"type": "subscribe", "stream": name})
    if outcome[0] == "subscribed":
        assert answer == {"type": "subscribed", "stream": name, "last_id": 0}
    else:
        assert answer == FORBIDDEN_FRAME


@pytest.mark.asyncio
@pytest.mark.parametrize("template, outcome", CASES)
async def test_publish(connect, alice, bob, rooms, template, outcome):
    name = stream_name(template, alice, bob)
    socket = await connect(alice)
    answer = await send(socket, {"type": "publish", "stream": name, "data": 1})
    if outcome[1] == "published":
        assert answer == {"type": "published", "stream": name, "id": 1}
    else:
        assert answer == FORBIDDEN_FRAME
        assert not await db(StreamCounter.objects.exists)


@pytest.mark.parametrize("template, outcome", CASES)
def test_rest_read(api, alice, bob, rooms, template, outcome):
    name = stream_name(template, alice, bob)
    response = api(alice).get(rest_path(name, alice, post=False))
    assert response.status_code == outcome[2]
    if outcome[2] == 404:
        assert response.json() == NOT_FOUND


@pytest.mark.parametrize("template, outcome", CASES)
def test_rest_post(api, alice, bob, rooms, template, outcome):
    name = stream_name(template, alice, bob)
    response = api(alice).post(
        rest_path(name, alice, post=True), {"data": "hi"}, format="json"
    )
    assert response.status_code == outcome[3]
    if outcome[3] == 404:
        assert response.json() == NOT_FOUND
    if outcome[3] == 403:
        assert response.json()["code"] == "forbidden"


@pytest.mark.parametrize("action", list(Action))
def test_inactive_user_is_denied_everything(alice, rooms, action):
    alice.is_active = False
    for name in ("user", "room:lobby", "room:team"):
        stream = stream_parse(name, user_id=alice.pk)
        decision = stream_access(user=alice, stream=stream, action=action)
        assert decision.access is Access.HIDDEN
