"""docs/extending.md's promises to a consumer on its own path, as a project uses it.

A project's consumer shares the user's channel-layer group with `/ws/`
(revocations reach it there), so every event realtime sends to that group
must be one it can take; and "the class refuses" an override of the methods
the guarantees live in must hold however the override reaches the class.
"""

import pytest
from channels.testing import WebsocketCommunicator

from realtime.base_consumer import AuthenticatedConsumer, FrameSpec
from realtime.connections import registry
from realtime.kinds import rights_changed
from realtime.models import Membership, Room
from realtime.routing import websocket_application
from realtime.tests.sockets import db, still_open, welcomed
from tests.apps.cursors.routing import websocket_urlpatterns

TIMEOUT = 5
CURSORS = "/ws/cursors/7/"

application = websocket_application(websocket_urlpatterns)


@pytest.fixture
def cursor_socket(open_session):
    """`await cursor_socket(user)` → a welcomed communicator on the cursor path."""
    opened = []

    async def make(user):
        tokens = await db(open_session, user)
        communicator = WebsocketCommunicator(
            application, f"{CURSORS}?token={tokens.access}"
        )
        await welcomed(communicator, timeout=TIMEOUT)
        opened.append(communicator)
        return communicator

    yield make
    for communicator in opened:
        communicator.future.cancel()


# --- events sent to the user's group ----------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_rights_changed_for_a_user_leaves_his_custom_socket_open(
    cursor_socket, alice
):
    """`rights_changed(..., user_id=...)` re-checks that user's `/ws/` sockets
    through his group, which his cursor socket is in too: it has no stream to
    re-check, and must neither crash (1011) nor close."""
    socket = await cursor_socket(alice)
    await db(rights_changed, stream="room:lobby", user_id=alice.pk)
    assert await still_open(socket, timeout=TIMEOUT)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_leaving_a_room_leaves_the_users_custom_socket_open(cursor_socket, alice):
    """The built-in case of the same event: a membership deleted (leaving a
    room, the admin's inline) re-checks that user's sockets, every path's."""

    def join_then_leave():
        room = Room.objects.create(slug="lobby", title="Lobby", public=True)
        Membership.objects.create(room=room, user=alice)
        return room

    room = await db(join_then_leave)
    socket = await cursor_socket(alice)
    await db(Membership.objects.filter(room=room, user=alice).delete)
    assert await still_open(socket, timeout=TIMEOUT)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_an_event_no_method_handles_releases_the_socket(cursor_socket, alice):
    """A channel-layer event the consumer has no method for (a project's typo,
    an event of a newer version) ends the socket like a handler that raises:
    its place in the per-user limit and the live registry is released, or the
    user stays counted for a socket that is gone until the process restarts."""
    socket = await cursor_socket(alice)
    await socket.send_input({"type": "cursor.typo"})
    with pytest.raises(ValueError, match="cursor.typo"):
        await socket.receive_output(timeout=TIMEOUT)
    assert registry.count(alice.pk) == 0


# --- sealed methods ------------------------------------------------------------------


class ConnectMixin:
    """A mixin a project might write to log connections (and so replace connect)."""

    async def connect(self) -> None:
        await self.accept()


class ReceiveMixin:
    async def receive(self, text_data=None, bytes_data=None) -> None:
        pass


def test_a_mixin_cannot_replace_connect():
    """Listed before AuthenticatedConsumer, a mixin's `connect` comes first in
    the MRO: anonymous sockets would be accepted. The class must refuse it as
    it refuses the same method defined in the class itself."""
    with pytest.raises(TypeError, match="connect"):

        class Logged(ConnectMixin, AuthenticatedConsumer):
            pass


def test_a_mixin_cannot_replace_receive():
    """Same for `receive`: the size, binary and rate limits live there."""
    with pytest.raises(TypeError, match="receive"):

        class Quiet(ReceiveMixin, AuthenticatedConsumer):
            pass


@pytest.mark.parametrize("name", ["websocket_connect", "websocket_receive"])
def test_the_asgi_handlers_that_call_connect_and_receive_are_sealed(name):
    """Channels' `websocket_connect` / `websocket_receive` call `connect` /
    `receive`: overriding them skips every guarantee of the handshake or of
    the frames just as well, so they are refused like `websocket_disconnect`."""

    async def handler(self, message):
        await self.accept()

    with pytest.raises(TypeError, match=name):
        type("Bypass", (AuthenticatedConsumer,), {name: handler})


# --- frame declarations ---------------------------------------------------------------


@pytest.mark.parametrize("fields", [{"x": float}, {"x": "number"}, ["x", "y"]])
def test_a_frame_field_that_is_not_a_field_type_is_refused_at_class_creation(fields):
    """A Django developer's guess at the field types (`float`, a string, a list
    of names) must stop the class like a handler that is not async does, not
    pass and crash (1011) the socket of the first client sending that frame."""
    with pytest.raises(TypeError, match="move"):

        class Moves(AuthenticatedConsumer):
            frames = {"move": FrameSpec("on_move", fields)}

            async def on_move(self, frame: dict) -> None:
                pass
