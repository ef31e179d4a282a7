"""Fixtures shared by every test: fast hashing, users, tokens, a clean guard."""

import asyncio
import contextlib

import pytest
from channels.layers import channel_layers
from django.core.cache import cache
from django.test import Client

from accounts.models import User
from accounts.services import session_open
from realtime.connections import registry
from realtime.presence import registry_reset
from realtime.presence.relay import relay_reset
from realtime.session_guard import guard
from realtime.tests.sockets import db, welcomed

# `database` and `scripts`: PostgreSQL sessions in processes of their own.
pytest_plugins = ["tests.db_scripts"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache():
    """Throttle counters live in the cache: no test inherits another's."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
async def _fresh_realtime_state():
    """Each test gets its own event loop, so per-process realtime state is reset."""
    channel_layers.backends.clear()
    registry.clear()
    await registry_reset()
    await relay_reset()
    yield
    await guard.stop()
    await relay_reset()
    await registry_reset()
    registry.clear()
    channel_layers.backends.clear()


@pytest.fixture
def make_user(db):
    def make(username: str = "alice", password: str = "pw-alice-123", **fields) -> User:
        user = User.objects.create_user(username=username, password=password, **fields)
        user.raw_password = password
        return user

    return make


@pytest.fixture
def alice(make_user) -> User:
    return make_user("alice", "pw-alice-123", email="alice@example.com")


@pytest.fixture
def bob(make_user) -> User:
    return make_user("bob", "pw-bob-123")


@pytest.fixture
def open_session():
    """`open_session(user)` → IssuedTokens (access, refresh, session)."""

    def open_(user: User, **kwargs):
        return session_open(user=user, user_agent="pytest", **kwargs)

    return open_


@pytest.fixture
def ws():
    """`ws(query=..., headers=..., subprotocols=...)` → a communicator on the real app.

    Tests disconnect what they open (`await communicator.disconnect()`).
    """
    from channels.testing import WebsocketCommunicator

    from authsocket.asgi import application

    def make(query: str = "", headers=(), subprotocols=None, path: str = "/ws/"):
        url = f"{path}?{query}" if query else path
        communicator = WebsocketCommunicator(
            application,
            url,
            headers=[(k.encode(), v.encode()) for k, v in headers],
            subprotocols=subprotocols,
        )
        return communicator

    return make


@pytest.fixture
def admin_client(make_user) -> Client:
    """A test client logged in through the real /admin/ login form."""
    make_user("root", "pw-root-123", is_staff=True, is_superuser=True)
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "root", "password": "pw-root-123"}
    )
    assert response.status_code == 302 and response.url == "/admin/"
    return client


@pytest.fixture
async def connect(ws, open_session):
    """`await connect(user)` → a welcomed `/ws/` communicator, disconnected afterwards."""
    opened = []

    async def connect_(user):
        tokens = await db(open_session, user)
        communicator = ws(f"token={tokens.access}")
        await welcomed(communicator)
        opened.append(communicator)
        return communicator

    yield connect_
    for communicator in opened:
        # Already closed by the server, or cancelled by a timed-out receive.
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await communicator.disconnect()
