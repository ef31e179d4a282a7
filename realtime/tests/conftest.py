"""Fixtures for stream tests: rooms, connected sockets, an API client, processes."""

import pytest
from rest_framework.test import APIClient

from realtime.models import Room
from realtime.services import membership_create
from realtime.tests.presence import BACKENDS, Cluster
from realtime.tests.sockets import db
from tests.api import api_client

TIMEOUT = 5
__all__ = ["TIMEOUT", "db", "send", "subscribe"]  # imported by tests of every app


@pytest.fixture
def carol(make_user):
    return make_user("carol", "pw-carol-123")


@pytest.fixture
def rooms(alice, bob, carol):
    """lobby (public: all), plaza (public: bob), team (alice, bob), secret (bob)."""
    made = {}
    for slug, public, members in [
        ("lobby", True, [alice, bob, carol]),
        ("plaza", True, [bob]),
        ("team", False, [alice, bob]),
        ("secret", False, [bob]),
    ]:
        made[slug] = Room.objects.create(slug=slug, title=slug.title(), public=public)
        for user in members:
            membership_create(user=user, room=made[slug])
    return made


@pytest.fixture
def api(open_session):
    """`api(user)` → a DRF client sending that user's Bearer token."""

    def make(user) -> APIClient:
        return api_client(open_session(user))

    return make


async def send(communicator, frame: dict) -> dict:
    """Send a frame and return the next frame received."""
    await communicator.send_json_to(frame)
    return await communicator.receive_json_from(timeout=TIMEOUT)


async def subscribe(communicator, stream: str, **fields) -> dict:
    """Subscribe and expect `subscribed` for `stream` (returned: `last_id`, …)."""
    answer = await send(communicator, {"type": "subscribe", "stream": stream, **fields})
    assert answer["type"] == "subscribed" and answer["stream"] == stream, answer
    assert isinstance(answer["last_id"], int), answer
    return answer


async def next_frame(communicator) -> dict:
    return await communicator.receive_json_from(timeout=TIMEOUT)


async def watch(communicator, stream: str) -> dict:
    """Subscribe with presence; returns the snapshot that follows `subscribed`."""
    await subscribe(communicator, stream, presence=True)
    snapshot = await next_frame(communicator)
    assert snapshot["type"] == "presence" and snapshot["stream"] == stream, snapshot
    return snapshot


@pytest.fixture
def test_kinds(monkeypatch):
    """The kinds of realtime/tests/kinds.py, declared for one test only."""
    from realtime.kinds import registry
    from realtime.tests.kinds import FeedKind, NoteKind, PathKind, TickerKind

    made = {
        "note": NoteKind(),
        "tick": TickerKind(),
        "feed": FeedKind(),
        "path": PathKind(),
    }
    for name, kind in made.items():
        monkeypatch.setitem(registry.kinds, name, kind)
    return made


@pytest.fixture(params=BACKENDS)
async def cluster(request):
    """Registries of live sockets standing for processes, in memory and over Redis."""
    if request.param == "redis":
        request.applymarker(pytest.mark.services)
    cluster = Cluster(request.param)
    yield cluster
    await cluster.close()
