"""Stream kinds (docs/streams.md): declared once, served alike on every interface."""

import re

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from accounts.service_keys import service_key_create
from realtime.groups import stream_group
from realtime.kinds import (
    History,
    KindRegistry,
    StreamKind,
    registry,
    rights_changed,
)
from realtime.models import Message, StreamCounter
from realtime.publish import stream_publish
from realtime.stream_kinds import RoomKind, UserKind
from realtime.tests.conftest import TIMEOUT, db, send, subscribe
from realtime.tests.kinds import NoteKind

FORBIDDEN_FRAME = {
    "type": "error",
    "code": "forbidden",
    "detail": "No such stream, or not allowed.",
}
QUIET = 0.3

pytestmark = pytest.mark.django_db(transaction=True)


# --- declaring -------------------------------------------------------------------


def test_the_built_ins_are_declared_through_the_public_api():
    assert isinstance(registry.get("user"), UserKind)
    assert isinstance(registry.get("room"), RoomKind)
    assert registry.get("room").presence and not registry.get("user").presence


def test_a_second_kind_of_one_name_is_refused_naming_both():
    kinds = KindRegistry()
    kinds.add(NoteKind())

    class OtherNotes(StreamKind):
        name = "note"
        key_pattern = r"[0-9]+"

    with pytest.raises(ImproperlyConfigured) as refused:
        kinds.add(OtherNotes())
    message = str(refused.value)
    assert "note:<key>" in message
    assert "realtime.tests.kinds.NoteKind" in message and "OtherNotes" in message


def test_a_kind_claiming_a_built_in_name_is_refused():
    class MyUsers(StreamKind):
        name = "user"
        key_pattern = r"[a-z]+"

    with pytest.raises(ImproperlyConfigured, match="user:<key>"):
        registry.add(MyUsers())
    assert isinstance(registry.get("user"), UserKind)


@pytest.mark.parametrize(
    "name, pattern",
    [("", r"\d+"), ("Doc", r"\d+"), ("a:b", r"\d+"), ("doc-x", r"\d+"), ("doc", "")],
)
def test_a_kind_with_a_bad_name_or_no_pattern_is_refused(name, pattern):
    kind = type("Bad", (StreamKind,), {"name": name, "key_pattern": pattern})()
    with pytest.raises(ImproperlyConfigured):
        KindRegistry().add(kind)


def test_a_pattern_that_is_not_a_regex_is_refused():
    kind = type("Bad", (StreamKind,), {"name": "doc", "key_pattern": "("})()
    with pytest.raises(ImproperlyConfigured, match="regular expression"):
        KindRegistry().add(kind)


@pytest.mark.parametrize(
    "attrs, named",
    [
        ({"publishers": "clients"}, "publishers"),
        ({"presence": "no"}, "presence"),
        ({"presence": None}, "presence"),
        ({"history": History(max_per_stream="10")}, "history"),
        ({"history": History(max_per_stream=0)}, "history"),
        ({"history": History(max_age=-1)}, "history"),
        ({"history": History(max_age=True)}, "history"),
        # Beyond a century, pruning would compute a date before year 1.
        ({"history": History(max_age=10**12)}, "between 1 and"),
        ({"fresh_user": "yes"}, "fresh_user"),
    ],
)
def test_a_kind_with_a_mistyped_setting_is_refused_naming_it(attrs, named):
    """A typo must not quietly change who publishes or turn presence on."""
    kind = type("Bad", (StreamKind,), {"name": "doc", "key_pattern": r"\d+", **attrs})
    with pytest.raises(ImproperlyConfigured, match=named):
        KindRegistry().add(kind())


@pytest.mark.parametrize(
    "kind, key, plain",
    [
        ("room", "lobby", True),
        ("doc", "a.b-c_D9", True),
        ("doc", "a b", False),
        ("doc", "x/y", False),
        ("doc", "é", False),
        ("doc", "k" * 95, True),
        ("doc", "k" * 96, False),
    ],
)
def test_group_names_stay_valid_for_any_key(kind, key, plain):
    group = stream_group(kind, key)
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,99}", group)
    assert (group == f"{kind}.{key}") is plain


def test_hashed_groups_differ_by_key():
    assert stream_group("doc", "a b") != stream_group("doc", "a c")


# --- the socket ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_kind_decides_who_subscribes(connect, alice, bob, test_kinds):
    test_kinds["note"].readers.add(("n1", alice.pk))
    a, b = await connect(alice), await connect(bob)
    assert (await subscribe(a, "note:n1"))["last_id"] == 0
    assert await send(b, {"type": "subscribe", "stream": "note:n1"}) == FORBIDDEN_FRAME
    # Forbidden, bad key, unknown kind: one answer, nothing leaks.
    for name in ("feed:1", "note:N1", "nope:n1"):
        assert await send(b, {"type": "subscribe", "stream": name}) == FORBIDDEN_FRAME


@pytest.mark.asyncio
async def test_clients_publish_where_the_kind_lets_them(
    connect, alice, bob, test_kinds
):
    note = test_kinds["note"]
    note.readers.add(("n1", alice.pk))
    note.watchers.add(("n1", bob.pk))
    a, b = await connect(alice), await connect(bob)
    await subscribe(a, "note:n1")
    await subscribe(b, "note:n1")
    ack = await send(a, {"type": "publish", "stream": "note:n1", "data": "hi"})
    assert ack == {"type": "published", "stream": "note:n1", "id": 1}
    for socket in (a, b):
        message = await socket.receive_json_from(timeout=TIMEOUT)
        assert (message["stream"], message["id"], message["data"]) == (
            "note:n1",
            1,
            "hi",
        )
    # A watcher may read, not publish; a server-only kind takes no client.
    denied = await send(b, {"type": "publish", "stream": "note:n1", "data": "x"})
    assert denied == FORBIDDEN_FRAME
    await subscribe(b, "tick:a")
    assert await send(b, {"type": "publish", "stream": "tick:a", "data": 1}) == (
        FORBIDDEN_FRAME
    )
    assert await db(lambda: Message.objects.count()) == 1


@pytest.mark.asyncio
async def test_a_kind_without_history_numbers_but_refuses_since(
    connect, alice, test_kinds
):
    a = await connect(alice)
    name = "tick:EUR/USD spot"  # outside group-name characters: hashed group
    assert (await subscribe(a, name))["last_id"] == 0
    for n in (1, 2):
        await db(stream_publish, name=name, data={"n": n})
        message = await a.receive_json_from(timeout=TIMEOUT)
        assert (message["stream"], message["id"]) == (name, n)
    assert await db(lambda: Message.objects.filter(stream=name).exists()) is False
    assert (await subscribe(a, name))["last_id"] == 2
    answer = await send(a, {"type": "subscribe", "stream": name, "since": 1})
    assert answer["type"] == "error" and answer["code"] == "bad_request"


@pytest.mark.asyncio
async def test_rights_changed_ends_the_subscriptions_that_lost_the_right(
    connect, alice, bob, test_kinds
):
    note = test_kinds["note"]
    note.readers |= {("n1", alice.pk), ("n1", bob.pk)}
    a, b = await connect(alice), await connect(bob)
    await subscribe(a, "note:n1")
    await subscribe(b, "note:n1")
    note.readers.discard(("n1", bob.pk))
    await db(rights_changed, stream="note:n1")
    assert await b.receive_json_from(timeout=TIMEOUT) == {
        "type": "unsubscribed",
        "stream": "note:n1",
        "reason": "forbidden",
    }
    assert await a.receive_nothing(timeout=QUIET)
    # Ended for real: bob gets no more of it, alice does.
    await db(stream_publish, name="note:n1", data="after")
    assert (await a.receive_json_from(timeout=TIMEOUT))["data"] == "after"
    assert await b.receive_nothing(timeout=QUIET)


@pytest.mark.asyncio
async def test_rights_changed_for_one_user_rechecks_only_his_sockets(
    connect, alice, bob, test_kinds
):
    note = test_kinds["note"]
    note.readers |= {("n1", alice.pk), ("n2", alice.pk)}
    a = await connect(alice)
    await subscribe(a, "note:n1")
    await subscribe(a, "note:n2")
    note.readers.clear()
    await db(rights_changed, streams=["note:n2", "nope:x"], user_id=alice.pk)
    assert await a.receive_json_from(timeout=TIMEOUT) == {
        "type": "unsubscribed",
        "stream": "note:n2",
        "reason": "forbidden",
    }
    assert await a.receive_nothing(timeout=QUIET)


# --- REST: /api/streams/<stream>/messages ----------------------------------------


def test_stream_history_serves_every_kind_that_keeps_it(
    api, alice, bob, rooms, test_kinds
):
    test_kinds["note"].readers.add(("n1", alice.pk))
    for n in range(3):
        stream_publish(name="note:n1", data=n)
    stream_publish(name="room:lobby", data="lobby")
    stream_publish(name=f"user:{alice.pk}", data="mine")
    client = api(alice)
    page = client.get("/api/streams/note:n1/messages?after=1&limit=1").json()
    assert [(m["stream"], m["id"], m["data"]) for m in page] == [("note:n1", 2, 1)]
    assert client.get("/api/streams/room:lobby/messages").json()[0]["data"] == "lobby"
    for name in ("user", f"user:{alice.pk}"):
        mine = client.get(f"/api/streams/{name}/messages").json()
        assert [(m["stream"], m["data"]) for m in mine] == [("user", "mine")]


@pytest.mark.parametrize(
    "name",
    ["note:n1", "room:secret", "room:nowhere", "user:{bob}", "nope:x", "tick:a", "x"],
)
def test_stream_history_is_404_when_hidden_unknown_or_not_kept(
    api, alice, bob, rooms, test_kinds, name
):
    response = api(alice).get(f"/api/streams/{name.format(bob=bob.pk)}/messages")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_stream_history_checks_its_query(api, alice, test_kinds):
    test_kinds["note"].readers.add(("n1", alice.pk))
    response = api(alice).get("/api/streams/note:n1/messages?limit=500")
    assert response.status_code == 400


@pytest.mark.parametrize("slash", ["/", "%2F"])
def test_a_key_with_slashes_is_addressable_on_every_stream_path(
    api, alice, test_kinds, slash
):
    """A kind's pattern may allow `/`: the URL carries it raw or encoded (the
    Python client sends `%2F`, which the server decodes before routing), and
    a key ending in `/messages` is still a presence path's stream."""
    _, raw = service_key_create(name="slashes")
    server = APIClient()
    server.credentials(HTTP_AUTHORIZATION=f"ApiKey {raw}")
    for name in ("path:a/b", "path:a/messages"):
        stream_publish(name=name, data=name)
        encoded = name.replace("/", slash)
        for client, prefix in ((api(alice), "/api"), (server, "/api/server")):
            history = client.get(f"{prefix}/streams/{encoded}/messages")
            assert history.status_code == 200, (prefix, encoded, history.content)
            assert [m["data"] for m in history.json()] == [name]
            presence = client.get(f"{prefix}/streams/{encoded}/presence")
            assert presence.status_code == 200, (prefix, encoded, presence.content)
            assert presence.json()["stream"] == name


def test_stream_history_needs_a_token(test_kinds):
    assert APIClient().get("/api/streams/room:lobby/messages").status_code == 401


# --- the server API ----------------------------------------------------------------


@pytest.fixture
def server():
    _, raw = service_key_create(name="kinds-test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"ApiKey {raw}")
    return client


def test_server_publishes_to_a_project_kind(server, test_kinds):
    response = server.post(
        "/api/server/publish", {"stream": "note:n1", "data": 1}, format="json"
    )
    assert response.status_code == 201
    assert (response.json()["stream"], response.json()["id"]) == ("note:n1", 1)
    history = server.get("/api/server/streams/note:n1/messages").json()
    assert [m["data"] for m in history] == [1]


def test_server_publish_to_a_kind_that_takes_none_is_403(server, test_kinds):
    response = server.post(
        "/api/server/publish", {"stream": "feed:1", "data": 1}, format="json"
    )
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    assert not StreamCounter.objects.exists()
    missing = server.post(
        "/api/server/publish", {"stream": "feed:404", "data": 1}, format="json"
    )
    assert missing.status_code == 404


def test_server_publish_without_history_numbers_and_stores_nothing(server, test_kinds):
    for n in (1, 2):
        response = server.post(
            "/api/server/publish", {"stream": "tick:a", "data": n}, format="json"
        )
        assert response.status_code == 201 and response.json()["id"] == n
    assert not Message.objects.exists()
    history = server.get("/api/server/streams/tick:a/messages")
    assert history.status_code == 404


def test_an_idempotent_publish_without_history_is_answered_once(server, test_kinds):
    def publish():
        return server.post(
            "/api/server/publish",
            {"stream": "tick:a", "data": "once"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="k1",
        )

    first, again = publish(), publish()
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert StreamCounter.objects.get(pk="tick:a").last_message_id == 1
