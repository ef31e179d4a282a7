"""A project's own consumer on its own path gets all of docs/protocol.md §4.1–§4.3.

Through the real stack (Origin check, JWT middleware, router) built by
`realtime.routing`, as authsocket/asgi.py builds it, with the cursor consumer
of docs/extending.md and a test consumer for the hooks it does not use.
"""

import json
import logging
import time

import pytest
from channels.testing import WebsocketCommunicator
from django.urls import path

from accounts.revocation import session_revoke
from accounts.tokens import encode_access
from realtime.base_consumer import AuthenticatedConsumer, FrameSpec
from realtime.connections import registry
from realtime.frame_fields import STRING
from realtime.presence import registry_get
from realtime.protocol import CloseCode, ServerFrame
from realtime.publish import publish_to_user
from realtime.routing import websocket_application
from realtime.tests.sockets import close_code, db, refused, still_open, welcomed
from tests.apps.cursors.routing import websocket_urlpatterns
from tests.sessions import revoke_as_another_process

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

TIMEOUT = 5
CURSORS = "/ws/cursors/7/"


class HookedConsumer(AuthenticatedConsumer):
    """Refuses bob before accept, records its hooks, crashes on demand."""

    frames = {
        "echo": FrameSpec("on_echo", {"text": STRING, "tag": STRING.optional()}),
        "crash": FrameSpec("on_crash"),
    }
    calls: list = []

    async def socket_allowed(self) -> bool:
        return self.user.get_username() != "bob"

    async def socket_authenticated(self) -> None:
        HookedConsumer.calls.append(("authenticated", registry.count(self.user_id)))

    async def socket_closed(self, code: int) -> None:
        HookedConsumer.calls.append(("closed", int(code), registry.count(self.user_id)))

    async def on_echo(self, frame: dict) -> None:
        await self.send_frame("echo", frame, text=frame["text"])

    async def on_crash(self, frame: dict) -> None:
        raise RuntimeError("injected bug")


application = websocket_application(
    [path("ws/hooked/", HookedConsumer.as_asgi()), *websocket_urlpatterns]
)


@pytest.fixture(autouse=True)
def _no_calls():
    HookedConsumer.calls = []


@pytest.fixture
def socket(open_session):
    """`await socket(user, path)` → a communicator with that user's fresh token."""

    async def make(user, url: str = CURSORS, headers=()):
        tokens = await db(open_session, user)
        communicator = WebsocketCommunicator(
            application, f"{url}?token={tokens.access}", headers=headers
        )
        communicator.tokens = tokens
        return communicator

    return make


async def next_frame(communicator) -> dict:
    return await communicator.receive_json_from(timeout=TIMEOUT)


async def ask(communicator, frame: dict) -> dict:
    await communicator.send_json_to(frame)
    return await next_frame(communicator)


# --- §4.1 handshake ---------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "token=not-a-token"])
async def test_anonymous_is_refused_before_accept_on_a_custom_path(alice, query):
    communicator = WebsocketCommunicator(application, f"{CURSORS}?{query}")
    assert await refused(communicator)


async def test_a_foreign_origin_is_refused_on_a_custom_path(socket, alice):
    communicator = await socket(alice, headers=[(b"origin", b"https://evil.example")])
    assert await refused(communicator)


async def test_socket_allowed_false_refuses_before_accept(socket, alice, bob):
    assert await refused(await socket(bob, "/ws/hooked/"))
    communicator = await socket(alice, "/ws/hooked/")
    await welcomed(communicator)
    await communicator.disconnect()
    assert registry.count(bob.pk) == 0


async def test_welcome_is_the_first_frame(socket, alice):
    communicator = await socket(alice)
    welcome = await welcomed(communicator)
    assert welcome == {
        "type": ServerFrame.WELCOME,
        "user": {"id": alice.pk, "username": "alice"},
        "session": communicator.tokens.session.sid,
        "expires_at": communicator.tokens.access_expires_at,
        "protocol": "1.1",
    }
    await communicator.disconnect()


async def test_the_per_user_limit_counts_every_path(socket, alice, settings):
    settings.AUTHSOCKET_MAX_CONNECTIONS_PER_USER = 2
    on_streams = await socket(alice, "/ws/")
    on_cursors = await socket(alice)
    await welcomed(on_streams)
    await welcomed(on_cursors)
    third = await socket(alice)
    connected, _ = await third.connect(timeout=TIMEOUT)
    assert connected
    assert await third.receive_output(timeout=TIMEOUT) == {
        "type": "websocket.close",
        "code": CloseCode.TOO_MANY_CONNECTIONS,
    }
    for communicator in (on_streams, on_cursors, third):
        await communicator.disconnect()


async def test_every_path_counts_in_the_registry_of_live_sockets(socket, alice):
    on_streams, on_cursors = await socket(alice, "/ws/"), await socket(alice)
    for communicator in (on_streams, on_cursors):
        await welcomed(communicator)
    assert (await registry_get().user_connections(alice.pk)).connections == 2
    await on_cursors.disconnect()
    assert (await registry_get().user_connections(alice.pk)).connections == 1
    await on_streams.disconnect()


async def test_unlisted_paths_are_still_refused(socket, alice):
    assert await refused(await socket(alice, "/ws/cursors/not-a-number/"))


async def test_an_unlisted_path_is_refused_with_its_reason_logged(
    socket, alice, caplog
):
    caplog.set_level(logging.INFO, logger="realtime.routing")
    assert await refused(await socket(alice, "/ws/nowhere/"))
    reasons = [r.getMessage() for r in caplog.records if r.name == "realtime.routing"]
    assert reasons == ["websocket refused: no WebSocket endpoint at this path"]


# --- §4.2 frames --------------------------------------------------------------------


async def test_ping_is_built_in(socket, alice):
    communicator = await socket(alice)
    await welcomed(communicator)
    assert await ask(communicator, {"type": "ping", "ref": 3}) == {
        "type": "pong",
        "ref": 3,
    }
    await communicator.disconnect()


async def test_a_custom_frame_is_answered_by_its_handler(socket, alice, bob):
    mover, watcher = await socket(alice), await socket(bob)
    await welcomed(mover)
    await welcomed(watcher)
    await mover.send_json_to({"type": "cursor", "x": 10, "y": 2.5})
    moved = {"type": "cursor", "user": alice.pk, "x": 10, "y": 2.5}
    assert await next_frame(watcher) == moved
    assert await next_frame(mover) == moved
    await mover.disconnect()
    assert await next_frame(watcher) == {"type": "cursor.left", "user": alice.pk}
    await watcher.disconnect()


async def test_a_custom_frame_echoes_ref_and_ignores_unknown_fields(socket, alice):
    communicator = await socket(alice, "/ws/hooked/")
    await welcomed(communicator)
    answer = await ask(
        communicator, {"type": "echo", "text": "hi", "ref": [1], "extra": None}
    )
    assert answer == {"type": "echo", "text": "hi", "ref": [1]}
    await communicator.disconnect()


@pytest.mark.parametrize(
    "frame, detail",
    [
        ({"type": "cursor", "x": "10", "y": 2}, '"x" must be a number.'),
        ({"type": "cursor", "x": True, "y": 2}, '"x" must be a number.'),
        ({"type": "cursor", "x": 1}, '"y" is required in a cursor frame.'),
        ({"type": "cursor", "x": 1, "y": None}, '"y" must be a number.'),
    ],
)
async def test_a_custom_frame_with_a_wrong_field_is_bad_request(
    socket, alice, frame, detail
):
    communicator = await socket(alice)
    await welcomed(communicator)
    answer = await ask(communicator, {**frame, "ref": "r"})
    assert answer == {
        "type": "error",
        "code": "bad_request",
        "detail": detail,
        "ref": "r",
    }
    assert await still_open(communicator)
    await communicator.disconnect()


async def test_an_optional_field_of_the_wrong_type_is_bad_request(socket, alice):
    communicator = await socket(alice, "/ws/hooked/")
    await welcomed(communicator)
    answer = await ask(communicator, {"type": "echo", "text": "hi", "tag": 1})
    assert (
        answer["code"] == "bad_request"
        and answer["detail"] == '"tag" must be a string.'
    )
    await communicator.disconnect()


@pytest.mark.parametrize("frame_type", ["shout", "subscribe", "publish"])
async def test_unknown_and_stream_frames_are_unknown_type_on_a_custom_path(
    socket, alice, frame_type
):
    communicator = await socket(alice)
    await welcomed(communicator)
    answer = await ask(communicator, {"type": frame_type, "stream": "room:lobby"})
    assert answer["type"] == "error" and answer["code"] == "unknown_type"
    assert await still_open(communicator)
    await communicator.disconnect()


@pytest.mark.parametrize("text", ["not json", '{"type": "cursor", "x": NaN, "y": 1}'])
async def test_a_frame_that_is_not_strict_json_is_bad_request(socket, alice, text):
    communicator = await socket(alice)
    await welcomed(communicator)
    await communicator.send_to(text_data=text)
    answer = await next_frame(communicator)
    assert answer["type"] == "error" and answer["code"] == "bad_request"
    await communicator.disconnect()


# --- §4.3 closing codes ----------------------------------------------------------


async def test_an_oversize_frame_closes_4413(socket, alice, settings):
    settings.AUTHSOCKET_MAX_MESSAGE_BYTES = 1000
    communicator = await socket(alice)
    await welcomed(communicator)
    await communicator.send_to(
        text_data=json.dumps({"type": "ping", "pad": "x" * 1000})
    )
    code, _ = await close_code(communicator, TIMEOUT)
    assert code == CloseCode.MESSAGE_TOO_BIG
    await communicator.disconnect()


async def test_a_binary_frame_closes_4415(socket, alice):
    communicator = await socket(alice)
    await welcomed(communicator)
    await communicator.send_to(bytes_data=b'{"type": "ping"}')
    code, _ = await close_code(communicator, TIMEOUT)
    assert code == CloseCode.BINARY_FRAME
    await communicator.disconnect()


async def test_a_flood_is_rate_limited_then_closed_4429(socket, alice, settings):
    settings.AUTHSOCKET_FRAME_RATE = "5/s"
    communicator = await socket(alice)
    await welcomed(communicator)
    for _ in range(40):
        await communicator.send_json_to({"type": "cursor", "x": 1, "y": 1})
    frames, code = [], None
    while code is None:
        output = await communicator.receive_output(timeout=TIMEOUT)
        if output["type"] == "websocket.close":
            code = output["code"]
        else:
            frames.append(json.loads(output["text"]))
    # The burst of 2N went through (echoed by the group, in any order with errors).
    assert [f["type"] for f in frames].count("cursor") == 10
    assert {f.get("code") for f in frames if f["type"] == "error"} == {"rate_limited"}
    assert code == CloseCode.RATE_LIMITED
    await communicator.disconnect()


async def test_auth_renewal_answers_auth_ok(socket, alice):
    communicator = await socket(alice)
    await welcomed(communicator)
    renewed, expires_at = encode_access(
        user_id=alice.pk, sid=communicator.tokens.session.sid, ttl=600
    )
    answer = await ask(communicator, {"type": "auth", "token": renewed, "ref": 1})
    assert answer == {"type": "auth.ok", "expires_at": expires_at, "ref": 1}
    assert (await ask(communicator, {"type": "auth", "token": 5}))["code"] == (
        "bad_request"
    )
    await communicator.disconnect()


async def test_an_expired_token_warns_then_closes_4401(socket, alice, settings):
    settings.AUTHSOCKET_ACCESS_TTL, settings.AUTHSOCKET_LEEWAY = 2, 0
    communicator = await socket(alice)
    await welcomed(communicator)
    expires_at = communicator.tokens.access_expires_at
    assert await next_frame(communicator) == {
        "type": "auth.expiring",
        "expires_at": expires_at,
    }
    code, closed_at = await close_code(communicator, timeout=5)
    assert code == CloseCode.TOKEN_EXPIRED and closed_at >= expires_at - 0.05
    await communicator.disconnect()


async def test_revocation_by_channel_layer_event_closes_4403(socket, alice):
    communicator = await socket(alice)
    await welcomed(communicator)
    assert await db(session_revoke, session=communicator.tokens.session, reason="test")
    code, _ = await close_code(communicator, timeout=TIMEOUT)
    assert code == CloseCode.REVOKED
    await communicator.disconnect()
    assert registry.count(alice.pk) == 0


async def test_revocation_seen_only_by_the_poll_closes_4403(socket, alice):
    communicator = await socket(alice)
    await welcomed(communicator)
    await db(revoke_as_another_process, communicator.tokens.session)
    revoked = time.time()
    code, closed_at = await close_code(communicator, timeout=2)
    assert code == CloseCode.REVOKED and closed_at - revoked < 1.0
    await communicator.disconnect()


async def test_the_users_own_stream_does_not_reach_a_custom_path(socket, alice):
    """Its messages travel in the user's group, which every socket joins."""
    on_cursors, on_streams = await socket(alice), await socket(alice, "/ws/")
    await welcomed(on_cursors)
    await welcomed(on_streams)
    await db(publish_to_user, user=alice, data={"note": 1})
    assert (await next_frame(on_streams))["data"] == {"note": 1}
    assert await still_open(on_cursors)  # the ping's pong is its next frame
    for communicator in (on_cursors, on_streams):
        await communicator.disconnect()


# --- hooks and state ------------------------------------------------------------


async def test_hooks_run_once_each_with_the_socket_counted_then_released(socket, alice):
    communicator = await socket(alice, "/ws/hooked/")
    await welcomed(communicator)
    assert await still_open(communicator)
    await communicator.disconnect(code=1000)
    assert HookedConsumer.calls == [("authenticated", 1), ("closed", 1000, 0)]


async def test_a_handler_crash_releases_the_socket_before_it_ends(socket, alice):
    communicator = await socket(alice, "/ws/hooked/")
    await welcomed(communicator)
    await communicator.send_json_to({"type": "crash"})
    with pytest.raises(RuntimeError, match="injected bug"):
        await communicator.receive_output(timeout=TIMEOUT)
    assert HookedConsumer.calls[-1] == ("closed", CloseCode.INTERNAL_ERROR, 0)
    assert registry.count(alice.pk) == 0
