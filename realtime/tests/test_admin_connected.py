"""The admin's "connected now": sockets per user and per session, from the
registry of live sockets (entries registered through its own API, on the
event loop the admin view reaches, as under daphne)."""

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission
from django.test import Client

from realtime.presence import registry_get, registry_reset
from realtime.tests.sockets import db, welcomed

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/admin/connected/"


@pytest.fixture(autouse=True)
async def fresh_registry():
    await registry_reset()
    yield
    await registry_reset()


@sync_to_async
def page(user=None):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client.get(URL)


@pytest.fixture
def root(make_user):
    return make_user("root", "pw-root-123", is_staff=True, is_superuser=True)


async def test_it_lists_each_user_with_his_sockets_per_session(root, alice, bob):
    registry = registry_get()
    for socket_id, user, sid in [
        ("a1", alice, "alice-phone"),
        ("a2", alice, "alice-phone"),
        ("a3", alice, "alice-laptop"),
        ("b1", bob, "bob-tablet"),
    ]:
        await registry.socket_open(
            socket_id, user_id=user.pk, username=user.username, sid=sid
        )
    body = (await page(root)).content.decode()
    assert "2 users with 4 live sockets" in body
    assert f'data-user="{alice.pk}" data-session="alice-phone"' in body
    assert body.count('class="session-connections">2<') == 1  # alice-phone
    assert body.count('class="session-connections">1<') == 2  # laptop, tablet
    assert '<td rowspan="2" class="user-connections">3</td>' in body  # alice
    assert f"/admin/accounts/user/{bob.pk}/change/" in body


async def test_closed_sockets_are_gone(root, alice):
    registry = registry_get()
    await registry.socket_open("a1", user_id=alice.pk, username="alice", sid="x")
    await registry.socket_close("a1")
    assert "Nobody is connected." in (await page(root)).content.decode()


async def test_it_needs_staff_and_the_permission_to_view_sessions(make_user):
    anonymous = await page()
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    staff = await sync_to_async(make_user)("helper", "pw-helper-123", is_staff=True)
    assert (await page(staff)).status_code == 403


def staff_with(make_user, *codenames: str) -> Client:
    user = make_user("helper", "pw-helper-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("codename", ["view_authsession", "change_authsession"])
def test_whoever_may_see_the_sessions_list_may_see_it(make_user, codename):
    """The admin shows the sessions list to a user who may change sessions
    without the view permission (change implies view there): the page of
    their live sockets must not refuse him what the list shows."""
    client = staff_with(make_user, codename)
    sessions = client.get("/admin/accounts/authsession/")
    assert sessions.status_code == 200
    assert f'href="{URL}"' in sessions.content.decode()  # linked from the list
    assert client.get(URL).status_code == 200


def test_permissions_on_other_models_do_not_open_it(make_user):
    client = staff_with(make_user, "view_user", "change_user", "view_room")
    assert client.get("/admin/accounts/authsession/").status_code == 403
    assert client.get(URL).status_code == 403


async def test_it_shows_real_sockets(root, ws, alice, open_session):
    tokens = await db(open_session, alice)
    sockets = [ws(f"token={tokens.access}") for _ in range(2)]
    for socket in sockets:
        await welcomed(socket)
    body = (await page(root)).content.decode()
    assert "1 user with 2 live sockets" in body
    assert f'data-session="{tokens.session.sid}"' in body
    for socket in sockets:
        await socket.disconnect()
    assert "Nobody is connected." in (await page(root)).content.decode()
