"""The server API of docs/protocol.md §7: every status and header, both worlds.

A service key works on /api/server/ only, a user's JWT never does there, and
each side's 401 names its own scheme.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuthSession
from accounts.service_keys import service_key_create, service_key_revoke
from realtime.history import history_prune
from realtime.models import IdempotentPublish, Message, StreamCounter
from realtime.protocol import SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX, CloseCode
from realtime.server_api import idempotency_prune
from realtime.tests.conftest import TIMEOUT
from realtime.tests.sockets import close_code, db, refused, still_open, welcomed

pytestmark = pytest.mark.django_db(transaction=True)

PUBLISH = "/api/server/publish"


@pytest.fixture
def key():
    return service_key_create(name="backend")[1]


def server(raw_key: str | None, address: str = "10.0.0.1") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    if raw_key:
        client.credentials(HTTP_AUTHORIZATION=f"ApiKey {raw_key}")
    return client


def publish(client, stream, data=None, **headers):
    body = {"stream": stream, "data": {"n": 1} if data is None else data}
    return client.post(PUBLISH, body, format="json", **headers)


def assert_refused(response, code: str) -> None:
    assert response.status_code == 401, response.content
    assert response.json()["code"] == code
    assert response["WWW-Authenticate"] == "ApiKey"


# --- authentication ------------------------------------------------------------


SERVER_CALLS = [
    ("post", PUBLISH),
    ("get", "/api/server/streams/room:lobby/messages"),
    ("get", "/api/server/streams/room:lobby/presence"),
    ("post", "/api/server/users/1/revoke"),
    ("get", "/api/server/users/1/connections"),
]


@pytest.mark.parametrize(("method", "path"), SERVER_CALLS)
def test_no_credentials_is_not_authenticated_with_apikey(method, path, rooms):
    assert_refused(getattr(server(None), method)(path), "not_authenticated")


@pytest.mark.parametrize(("method", "path"), SERVER_CALLS)
def test_a_users_jwt_is_not_authenticated_on_the_server_api(
    method, path, api, alice, rooms
):
    staff = alice
    staff.is_staff = staff.is_superuser = True
    staff.save()
    assert_refused(getattr(api(staff), method)(path), "not_authenticated")
    assert Message.objects.count() == 0


@pytest.mark.parametrize("header", ["Basic YWxpY2U6cHc=", "Token abc", "ApiKey"])
def test_another_scheme_or_no_key_is_not_a_key(header, rooms):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    expected = "invalid_key" if header == "ApiKey" else "not_authenticated"
    assert_refused(publish(client, "room:lobby"), expected)


@pytest.mark.parametrize(
    "bad",
    [
        "ask_unknown",
        "not-even-prefixed",
        "ask_" + "A" * 43,
        "two words",
        "ask_é",
    ],
)
def test_an_unknown_key_is_invalid_key(bad, rooms):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"ApiKey {bad}")
    assert_refused(publish(client, "room:lobby"), "invalid_key")


@pytest.mark.parametrize("scheme", ["ApiKey", "apikey", "APIKEY", "aPiKeY"])
def test_the_scheme_is_case_insensitive(scheme, key, rooms):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
    assert publish(client, "room:lobby").status_code == 201


def test_a_revoked_key_is_refused_at_once(key, rooms):
    assert publish(server(key), "room:lobby").status_code == 201
    service_key_revoke(name="backend")
    assert_refused(publish(server(key), "room:lobby"), "invalid_key")


def test_bad_keys_are_throttled_per_address_and_a_valid_key_never(key, rooms, settings):
    settings.AUTHSOCKET_SERVICE_KEY_THROTTLE = "3/min"
    guesser = server("ask_guess", address="10.0.0.9")
    for _ in range(3):
        assert_refused(publish(guesser, "room:lobby"), "invalid_key")
    throttled = publish(guesser, "room:lobby")
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "throttled"
    assert int(throttled["Retry-After"]) > 0
    # The right key from the same address still works, and is not counted.
    for _ in range(5):
        assert publish(server(key, address="10.0.0.9"), "room:lobby").status_code == 201
    # Other addresses have counters of their own.
    assert_refused(
        publish(server("ask_guess", "10.0.0.10"), "room:lobby"), "invalid_key"
    )


def test_a_throttle_lowered_below_its_counter_still_says_when_to_retry(rooms, settings):
    settings.AUTHSOCKET_SERVICE_KEY_THROTTLE = "3/min"
    guesser = server("ask_guess", address="10.0.0.11")
    for _ in range(3):
        assert_refused(publish(guesser, "room:lobby"), "invalid_key")
    settings.AUTHSOCKET_SERVICE_KEY_THROTTLE = "1/min"  # three counted, one allowed
    throttled = publish(guesser, "room:lobby")
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0


def test_bad_keys_and_logins_count_on_counters_of_their_own(rooms, settings, alice):
    settings.AUTHSOCKET_SERVICE_KEY_THROTTLE = "2/min"
    settings.AUTHSOCKET_LOGIN_ADDRESS_THROTTLE = "2/min"
    guesser = server("ask_guess", address="10.0.0.20")
    for _ in range(2):
        assert_refused(publish(guesser, "room:lobby"), "invalid_key")
    assert publish(guesser, "room:lobby").status_code == 429
    # The same address still has its logins: the key failures did not spend them.
    login = {"username": "alice", "password": "wrong"}
    for _ in range(2):
        answer = guesser.post("/api/auth/login", login, format="json")
        assert answer.json()["code"] == "invalid_credentials"
    assert guesser.post("/api/auth/login", login, format="json").status_code == 429
    # And spent logins leave another address's key attempts alone.
    sprayer = server("ask_guess", address="10.0.0.21")
    for _ in range(3):
        sprayer.post("/api/auth/login", login, format="json")
    assert_refused(publish(sprayer, "room:lobby"), "invalid_key")


def test_missing_credentials_are_not_counted_as_failures(rooms, settings):
    settings.AUTHSOCKET_SERVICE_KEY_THROTTLE = "2/min"
    for _ in range(4):
        assert_refused(publish(server(None), "room:lobby"), "not_authenticated")
    assert_refused(publish(server("ask_guess"), "room:lobby"), "invalid_key")


def test_the_throttle_believes_forwarded_for_only_behind_trusted_proxies(
    rooms, settings
):
    settings.AUTHSOCKET_SERVICE_KEY_THROTTLE = "1/min"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
    client = server("ask_guess", address="10.0.0.5")
    assert_refused(
        publish(client, "room:lobby", HTTP_X_FORWARDED_FOR="1.1.1.1"), "invalid_key"
    )
    # A forged X-Forwarded-For does not buy a fresh counter.
    spoofed = publish(client, "room:lobby", HTTP_X_FORWARDED_FOR="2.2.2.2")
    assert spoofed.status_code == 429


# --- publish -------------------------------------------------------------------


def test_publish_to_a_room_answers_the_stored_message(key, rooms):
    response = publish(server(key), "room:lobby", {"text": "hi"})
    assert response.status_code == 201
    body = response.json()
    message = Message.objects.get()
    assert body == {
        "type": "message",
        "stream": "room:lobby",
        "id": message.seq,
        "sender": None,
        "data": {"text": "hi"},
        "ts_ms": int(message.created_at.timestamp() * 1000),
    }


def test_publish_to_a_user_names_the_stream_in_full(key, alice):
    response = publish(server(key), f"user:{alice.pk}", {"text": "hi"})
    assert response.status_code == 201
    assert response.json()["stream"] == f"user:{alice.pk}"
    assert Message.objects.get().stream == f"user:{alice.pk}"


async def test_a_publish_is_delivered_live(key, alice, rooms, connect):
    socket = await connect(alice)
    await socket.send_json_to({"type": "subscribe", "stream": "room:lobby"})
    assert (await socket.receive_json_from(timeout=TIMEOUT))["type"] == "subscribed"
    room = await db(publish, server(key), "room:lobby", {"to": "room"})
    assert room.status_code == 201
    frame = await socket.receive_json_from(timeout=TIMEOUT)
    assert (frame["stream"], frame["data"], frame["sender"]) == (
        "room:lobby",
        {"to": "room"},
        None,
    )
    own = await db(publish, server(key), f"user:{alice.pk}", {"to": "alice"})
    frame = await socket.receive_json_from(timeout=TIMEOUT)
    # On her own socket her stream is `user`, as for every user message.
    assert (frame["stream"], frame["id"], frame["data"]) == (
        "user",
        own.json()["id"],
        {"to": "alice"},
    )


@pytest.mark.parametrize(
    "stream",
    [
        "room:nowhere",
        "user:999999",
        "user",
        "room:",
        "room:Bad Slug",
        "user:0",
        "user:abc",
        "doc:1",
        "",
        "x" * 500,
        "room:lob\u0000by",
        "room:lobby\n",
    ],
)
def test_publish_to_an_unknown_or_malformed_stream_is_404(key, rooms, stream):
    response = publish(server(key), stream)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert Message.objects.count() == 0


def test_publish_to_a_name_with_a_lone_surrogate_is_404(key, rooms):
    raw = '{"stream": "room:\\ud800", "data": 1}'  # escaped: valid JSON text
    response = server(key).post(PUBLISH, raw, content_type="application/json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"data": 1},
        {"stream": 5, "data": 1},
        {"stream": None, "data": 1},
        {"stream": ["room:lobby"], "data": 1},
        {"stream": "room:lobby"},
        {"stream": "room:lobby", "data": "\u0000"},
        {"stream": "room:lobby", "data": "x" * 70000},
        [],
    ],
)
def test_publish_with_a_bad_body_is_400_invalid(key, rooms, body):
    response = server(key).post(PUBLISH, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert Message.objects.count() == 0


def test_publish_refuses_bodies_that_are_not_strict_json(key, rooms):
    response = server(key).post(
        PUBLISH,
        '{"stream": "room:lobby", "data": NaN}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_the_server_api_takes_no_other_method(key, rooms):
    response = server(key).get(PUBLISH)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


# --- idempotency ---------------------------------------------------------------


def test_a_repeated_idempotency_key_answers_the_first_message_200(key, rooms):
    first = publish(server(key), "room:lobby", {"n": 1}, HTTP_IDEMPOTENCY_KEY="k-1")
    again = publish(server(key), "room:lobby", {"n": 1}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Message.objects.count() == 1
    other = publish(server(key), "room:lobby", {"n": 1}, HTTP_IDEMPOTENCY_KEY="k-2")
    assert other.status_code == 201 and other.json()["id"] == first.json()["id"] + 1


async def test_a_replayed_publish_is_not_delivered_again(key, alice, rooms, connect):
    socket = await connect(alice)
    headers = {"HTTP_IDEMPOTENCY_KEY": "once"}
    first = await db(publish, server(key), f"user:{alice.pk}", {"n": 1}, **headers)
    assert (await socket.receive_json_from(timeout=TIMEOUT))["id"] == first.json()["id"]
    again = await db(publish, server(key), f"user:{alice.pk}", {"n": 1}, **headers)
    assert again.status_code == 200
    assert await socket.receive_nothing(timeout=0.3)


def test_idempotency_keys_belong_to_one_service_key(key, rooms):
    other = service_key_create(name="other")[1]
    one = publish(server(key), "room:lobby", HTTP_IDEMPOTENCY_KEY="shared")
    two = publish(server(other), "room:lobby", HTTP_IDEMPOTENCY_KEY="shared")
    assert (one.status_code, two.status_code) == (201, 201)
    assert one.json()["id"] != two.json()["id"]
    assert Message.objects.count() == 2


@pytest.mark.parametrize(
    ("stream", "data"), [("room:lobby", {"n": 2}), ("room:team", {"n": 1})]
)
def test_a_repeat_with_another_body_still_answers_the_first_message(
    key, rooms, stream, data
):
    first = publish(server(key), "room:lobby", {"n": 1}, HTTP_IDEMPOTENCY_KEY="k")
    again = publish(server(key), stream, data, HTTP_IDEMPOTENCY_KEY="k")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert list(Message.objects.values_list("stream", "data")) == [
        ("room:lobby", {"n": 1})
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"stream": "room:nowhere", "data": 1},  # 404 on a first use
        {"stream": "bogus", "data": 1},
        {"stream": "room:lobby"},  # 400 on a first use
        {"stream": 5, "data": 1},
        [],
    ],
)
def test_a_repeat_whose_body_would_be_refused_still_answers_the_first_message(
    key, rooms, body
):
    first = publish(server(key), "room:lobby", {"n": 1}, HTTP_IDEMPOTENCY_KEY="k")
    again = server(key).post(PUBLISH, body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Message.objects.count() == 1


def test_a_repeat_answers_the_first_message_after_its_history_was_pruned(
    key, rooms, settings
):
    first = publish(server(key), "room:lobby", {"n": 1}, HTTP_IDEMPOTENCY_KEY="k")
    publish(server(key), "room:lobby", {"n": 2})
    settings.AUTHSOCKET_HISTORY_MAX_PER_STREAM = 1
    history_prune()
    assert list(Message.objects.values_list("data", flat=True)) == [{"n": 2}]
    again = publish(server(key), "room:lobby", {"n": 1}, HTTP_IDEMPOTENCY_KEY="k")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert list(Message.objects.values_list("data", flat=True)) == [{"n": 2}]


def test_an_idempotency_key_older_than_a_day_publishes_again(key, rooms):
    first = publish(server(key), "room:lobby", HTTP_IDEMPOTENCY_KEY="daily")
    IdempotentPublish.objects.update(created_at=timezone.now() - timedelta(hours=25))
    again = publish(server(key), "room:lobby", HTTP_IDEMPOTENCY_KEY="daily")
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"] + 1
    assert IdempotentPublish.objects.count() == 1


def test_expired_idempotency_entries_are_pruned(key, rooms):
    for n in range(3):
        publish(server(key), "room:lobby", HTTP_IDEMPOTENCY_KEY=f"k{n}")
    IdempotentPublish.objects.filter(key__in=["k0", "k1"]).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    assert idempotency_prune() == 2
    assert list(IdempotentPublish.objects.values_list("key", flat=True)) == ["k2"]
    assert Message.objects.count() == 3  # the messages stay


@pytest.mark.parametrize("value", ["", "x" * 65, "tab\there", "del\x7f", "é"])
def test_an_invalid_idempotency_key_is_400_and_publishes_nothing(key, rooms, value):
    response = publish(server(key), "room:lobby", HTTP_IDEMPOTENCY_KEY=value)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "Idempotency-Key" in response.json()["errors"]
    assert Message.objects.count() == 0


def test_idempotency_key_of_64_printable_characters_is_taken(key, rooms):
    value = "~ !" + "k" * 61
    response = publish(server(key), "room:lobby", HTTP_IDEMPOTENCY_KEY=value)
    assert response.status_code == 201


def test_a_publish_that_loses_the_race_answers_the_winners_message(key, rooms):
    """B looks the key up, A publishes and commits, then B goes on: one message."""
    looked_up, a_done = threading.Event(), threading.Event()
    answers = []

    def pause_after_first_lookup(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "idempotentpublish" in sql and not looked_up.is_set():
            looked_up.set()
            a_done.wait(timeout=10)
        return result

    def b():
        try:
            with connection.execute_wrapper(pause_after_first_lookup):
                answers.append(
                    publish(server(key), "room:lobby", HTTP_IDEMPOTENCY_KEY="race")
                )
        finally:
            connection.close()

    thread = threading.Thread(target=b)
    thread.start()
    assert looked_up.wait(timeout=10)
    first = publish(server(key), "room:lobby", HTTP_IDEMPOTENCY_KEY="race")
    a_done.set()
    thread.join(timeout=30)
    assert first.status_code == 201
    assert answers[0].status_code == 200 and answers[0].json() == first.json()
    assert Message.objects.count() == 1
    assert (
        StreamCounter.objects.get(pk="room:lobby").last_message_id == 1
    )  # B's rolled back


def test_concurrent_identical_publishes_store_one_message(key, rooms):
    """Threads on the file database: all pass the first lookup before any commit."""
    threads_count = 12
    barrier = threading.Barrier(threads_count)
    answers = []

    def attempt():
        try:
            barrier.wait(timeout=10)
            response = publish(
                server(key), "room:lobby", {"n": 1}, HTTP_IDEMPOTENCY_KEY="race"
            )
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(answers) == threads_count
    assert sorted(status for status, _ in answers) == [200] * 11 + [201]
    assert len({body["id"] for _, body in answers}) == 1
    assert Message.objects.count() == 1


# --- history -------------------------------------------------------------------


def test_history_pages_a_room_as_for_users(key, rooms):
    for n in range(5):
        publish(server(key), "room:team", {"n": n})
    page = server(key).get("/api/server/streams/room:team/messages?after=1&limit=2")
    assert page.status_code == 200
    assert [(m["id"], m["stream"]) for m in page.json()] == [
        (2, "room:team"),
        (3, "room:team"),
    ]
    latest = server(key).get("/api/server/streams/room:team/messages?limit=2")
    assert [m["id"] for m in latest.json()] == [4, 5]


def test_history_of_a_user_stream_names_it_in_full(key, alice):
    publish(server(key), f"user:{alice.pk}", {"n": 1})
    page = server(key).get(f"/api/server/streams/user:{alice.pk}/messages")
    assert [m["stream"] for m in page.json()] == [f"user:{alice.pk}"]


@pytest.mark.parametrize("stream", ["room:nowhere", "user:999999", "user", "doc:1"])
def test_history_of_an_unknown_stream_is_404(key, rooms, stream):
    response = server(key).get(f"/api/server/streams/{stream}/messages")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "after=-1",
        "after=x",
        "after=1_0",
        "limit=1_0",
        "after=1.0",
        "after=%201",
        "limit=%D9%A3",  # an Arabic-Indic three
        "after=",
        "limit=",
    ],
)
def test_history_with_a_bad_page_is_400(key, rooms, query):
    response = server(key).get(f"/api/server/streams/room:lobby/messages?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


# --- revoke --------------------------------------------------------------------


async def test_revoking_a_user_revokes_every_session_and_closes_sockets(
    key, alice, bob, connect
):
    sockets = [await connect(alice), await connect(alice)]
    bobs = await connect(bob)
    response = await db(server(key).post, f"/api/server/users/{alice.pk}/revoke")
    assert response.status_code == 200
    assert response.json() == {"revoked": 2}
    for socket in sockets:
        code, _ = await close_code(socket, timeout=2)
        assert code == CloseCode.REVOKED
    assert await still_open(bobs)
    assert not await db(AuthSession.objects.filter(user=alice).live().exists)
    again = await db(server(key).post, f"/api/server/users/{alice.pk}/revoke")
    assert again.json() == {"revoked": 0}


@pytest.mark.parametrize("user_id", ["999999", "0"])
def test_revoking_an_unknown_user_is_404(key, user_id):
    response = server(key).post(f"/api/server/users/{user_id}/revoke")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- a key never opens a WebSocket ---------------------------------------------


async def test_a_service_key_never_opens_a_websocket(ws, key):
    assert await refused(ws(headers=[("authorization", f"ApiKey {key}")]))


async def test_a_key_header_beside_a_valid_token_is_ignored(
    ws, key, alice, open_session
):
    """Only a Bearer header is a socket credential: the key gives the socket
    nothing, and the token behind it makes it that token's session."""
    tokens = await db(open_session, alice)
    communicator = ws(
        f"token={tokens.access}", headers=[("authorization", f"ApiKey {key}")]
    )
    welcome = await welcomed(communicator)
    assert (welcome["user"]["id"], welcome["session"]) == (alice.pk, tokens.session.sid)
    await communicator.disconnect()


async def test_a_key_in_the_query_string_is_refused(ws, key):
    assert await refused(ws(f"token={key}"))
    assert await refused(ws(f"ticket={key}"))


async def test_a_key_as_a_bearer_token_or_a_token_subprotocol_is_refused(ws, key):
    assert await refused(ws(headers=[("authorization", f"Bearer {key}")]))
    offered = [SUBPROTOCOL, f"{TOKEN_SUBPROTOCOL_PREFIX}{key}"]
    assert await refused(ws(subprotocols=offered))


# --- schema --------------------------------------------------------------------


def test_the_schema_documents_the_server_api_with_the_apikey_scheme(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["components"]["securitySchemes"]["apiKeyAuth"]["type"] == "apiKey"
    server_operations = {
        (path, method): operation
        for path, methods in schema["paths"].items()
        if path.startswith("/api/server/")
        for method, operation in methods.items()
    }
    assert {path for path, _ in server_operations} == {
        "/api/server/publish",
        "/api/server/streams/{stream}/messages",
        "/api/server/streams/{stream}/presence",
        "/api/server/users/{user_id}/connections",
        "/api/server/users/{user_id}/revoke",
    }
    for operation in server_operations.values():
        assert operation["security"] == [{"apiKeyAuth": []}]
        assert {"401", "429"} <= set(operation["responses"])
    # The stream is in the body: its 404, and the 403 of a kind, still listed.
    publish_answers = server_operations[("/api/server/publish", "post")]["responses"]
    assert {"200", "201", "400", "403", "404"} <= set(publish_answers)
    for path, methods in schema["paths"].items():
        if not path.startswith("/api/server/"):
            for operation in methods.values():
                assert {"apiKeyAuth": []} not in operation.get("security", [])
