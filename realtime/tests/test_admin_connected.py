"""The admin's "connected now": sockets per user and per session, from the
registry of live sockets (entries registered through its own API)."""

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from realtime.presence import registry_get, registry_reset

pytestmark = pytest.mark.django_db

URL = "/admin/connected/"


@pytest.fixture(autouse=True)
def fresh_registry():
    async_to_sync(registry_reset)()
    yield
    async_to_sync(registry_reset)()


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_it_lists_each_user_with_his_sockets_per_session(make_user, alice, bob):
    root = make_user("root", "pw-root-123", is_staff=True, is_superuser=True)
    registry = registry_get()
    for socket_id, user, sid in [
        ("a1", alice, "alice-phone"),
        ("a2", alice, "alice-phone"),
        ("a3", alice, "alice-laptop"),
        ("b1", bob, "bob-tablet"),
    ]:
        async_to_sync(registry.socket_open)(
            socket_id, user_id=user.pk, username=user.username, sid=sid
        )
    body = logged_in(root).get(URL).content.decode()
    assert "2 users with 4 live sockets" in body
    assert f'data-user="{alice.pk}" data-session="alice-phone"' in body
    assert body.count('class="session-connections">2<') == 1  # alice-phone
    assert body.count('class="session-connections">1<') == 2  # laptop, tablet
    assert '<td rowspan="2" class="user-connections">3</td>' in body  # alice
    assert f"/admin/accounts/user/{bob.pk}/change/" in body


def test_closed_sockets_are_gone(make_user, alice):
    root = make_user("root", "pw-root-123", is_staff=True, is_superuser=True)
    registry = registry_get()
    async_to_sync(registry.socket_open)(
        "a1", user_id=alice.pk, username="alice", sid="x"
    )
    async_to_sync(registry.socket_close)("a1")
    body = logged_in(root).get(URL).content.decode()
    assert "Nobody is connected." in body


def test_it_needs_staff_and_the_permission_to_view_sessions(make_user, alice):
    anonymous = Client().get(URL)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    staff = make_user("helper", "pw-helper-123", is_staff=True)
    assert logged_in(staff).get(URL).status_code == 403
