"""The extension API refuses, when the class or the routes are defined, what
would quietly break authsocket's guarantees on a live socket: replacing the
built-in `ping`/`auth` handlers, or routing a consumer not built on
AuthenticatedConsumer. A group name the layer cannot take is a bug of the
consumer, not an outage.
"""

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import path, re_path

from realtime.base_consumer import AuthenticatedConsumer
from realtime.routing import websocket_application, websocket_routes
from realtime.tests.sockets import db, welcomed
from tests.metrics import Delta

TIMEOUT = 5


class Plain(AuthenticatedConsumer):
    """A well-behaved project consumer."""


# --- (a) the built-in frame handlers are sealed ---------------------------------------


@pytest.mark.parametrize("method", ["on_auth", "on_ping"])
def test_replacing_a_built_in_frame_handler_is_refused(method):
    """`on_auth` moves the socket's expiry only for a valid token of its own
    session: a subclass's `on_auth` would silently take that over (and a
    `pass` would keep a socket past its token's expiry with `auth.ok`-less
    renewals ignored); `on_ping` is part of the protocol as well."""

    async def override(self, frame):
        pass

    with pytest.raises(TypeError, match=f"overrides {method}"):
        type("Bad", (AuthenticatedConsumer,), {method: override})


def test_a_mixin_cannot_replace_on_auth_either():
    class Renewal:
        async def on_auth(self, frame):
            pass

    with pytest.raises(TypeError, match="overrides on_auth"):
        type("Bad", (Renewal, AuthenticatedConsumer), {})


# --- (b) only AuthenticatedConsumers are routed ----------------------------------------


class Unguarded(AsyncWebsocketConsumer):
    """A Channels consumer: it would accept anonymous sockets, never expire them."""


def test_routing_a_consumer_not_built_on_authenticated_consumer_is_refused():
    with pytest.raises(TypeError, match="Unguarded.*not an AuthenticatedConsumer"):
        websocket_routes(path("ws/plain/", Unguarded.as_asgi()))


def test_a_nested_router_is_checked_too():
    nested = URLRouter([path("plain/", Unguarded.as_asgi())])
    with pytest.raises(TypeError, match="Unguarded"):
        websocket_routes(path("ws/app/", nested))


def test_an_application_that_is_no_consumer_is_refused():
    async def raw_app(scope, receive, send):
        pass

    with pytest.raises(TypeError, match="not an AuthenticatedConsumer"):
        websocket_routes(path("ws/raw/", raw_app))


def test_authenticated_consumers_are_routed_nested_or_not():
    routes = websocket_routes(
        re_path(r"^ws/a/(?P<doc>[0-9]{1,18})/$", Plain.as_asgi()),
        path("ws/b/", URLRouter([path("c/", Plain.as_asgi())])),
    )
    assert len(routes) == 4  # /ws/, the two, the denier of every other path


# --- (c) a group name the layer cannot take -------------------------------------------


class LongGroup(AuthenticatedConsumer):
    """Puts its whole id in a group name with a prefix the route did not allow for."""

    async def socket_authenticated(self) -> None:
        doc = self.scope["url_route"]["kwargs"]["doc"]
        await self.group_join(f"project.documents.cursors.{doc}")


@pytest.mark.django_db(transaction=True)
async def test_a_group_name_the_layer_cannot_take_is_a_bug_not_a_layer_outage(
    alice, open_session
):
    """Before: every such socket was closed 4503 ("reconnect with backoff",
    forever) and counted as a channel-layer error (a false alert). Now the
    consumer's bug surfaces as one: the handler raises (1011, logged)."""
    application = websocket_application(
        websocket_routes(
            re_path(r"^ws/long/(?P<doc>[0-9]{1,97})/$", LongGroup.as_asgi())
        )
    )
    tokens = await db(open_session, alice)
    communicator = WebsocketCommunicator(
        application, f"/ws/long/{'7' * 90}/?token={tokens.access}"
    )
    with Delta(
        "authsocket_channel_layer_errors_total", operation="group_add"
    ) as errors:
        await welcomed(communicator)
        with pytest.raises(TypeError, match="not a channel-layer group name"):
            await communicator.receive_output(timeout=TIMEOUT)
    assert errors.value == 0
