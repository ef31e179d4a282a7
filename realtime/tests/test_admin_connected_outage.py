"""The admin's "connected now" during a Redis outage: the registry answers from
this process alone, and the page says so instead of claiming every process.

Redis is a real address nothing listens on: the registry's own client fails
there as it would against a Redis that went away.
"""

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from realtime.presence import registry_get, registry_reset
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/admin/connected/"
NOTICE = "Redis is unreachable: only this process's sockets are listed."


@pytest.fixture
async def unreachable_redis(settings):
    """This process's registry built over a Redis nobody answers at."""
    await registry_reset()
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    yield
    await registry_reset()


@pytest.fixture
def root(make_user):
    return make_user("root", "pw-root-123", is_staff=True, is_superuser=True)


@sync_to_async
def page(user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(URL)
    assert response.status_code == 200
    return response.content.decode()


async def test_in_an_outage_the_page_says_only_this_process_is_listed(
    unreachable_redis, root, alice
):
    registry = registry_get()
    await registry.socket_open("a1", user_id=alice.pk, username="alice", sid="s1")
    body = await page(root)
    assert registry.degraded
    assert NOTICE in body
    assert "on every server process" not in body
    assert "1 user with 1 live socket, on this server process only." in body
    assert 'data-session="s1"' in body  # what this process holds is still listed


async def test_with_the_registry_reachable_there_is_no_notice(root, alice):
    registry = registry_get()  # in memory: the store always answers
    await registry.socket_open("a1", user_id=alice.pk, username="alice", sid="s1")
    body = await page(root)
    assert "1 user with 1 live socket, on every server process." in body
    assert "Redis is unreachable" not in body
