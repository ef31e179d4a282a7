"""The admin: users with sessions, revoke and notify actions, the sessions list."""

import pytest
from django.test import Client

from accounts.models import AuthSession
from realtime.models import Message
from realtime.protocol import CloseCode
from realtime.tests import conftest as streams
from realtime.tests.conftest import TIMEOUT, db

pytestmark = pytest.mark.django_db(transaction=True)
connect = streams.connect  # the welcomed-socket fixture of the stream tests


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


def run_action(client: Client, url: str, action: str, ids, **fields):
    data = {"action": action, "_selected_action": [str(i) for i in ids], **fields}
    response = client.post(url, data, follow=True)
    assert response.status_code == 200
    return response


def test_user_page_shows_the_sessions_inline(admin_client, alice, open_session):
    tokens = open_session(alice)
    response = admin_client.get(f"/admin/accounts/user/{alice.pk}/change/")
    assert response.status_code == 200
    assert tokens.session.sid in response.content.decode()


def test_login_sessions_are_not_named_like_djangos_sessions(admin_client):
    index = admin_client.get("/admin/").content.decode()
    assert "Login sessions" in index
    assert ">Sessions<" not in index


def test_revoke_action_revokes_the_users_sessions(
    admin_client, alice, bob, open_session
):
    alice_sessions = [open_session(alice).session for _ in range(2)]
    bob_session = open_session(bob).session
    response = run_action(
        admin_client, "/admin/accounts/user/", "revoke_sessions", [alice.pk]
    )
    assert "Revoked 2 session(s)." in response.content.decode()
    for session in alice_sessions:
        session.refresh_from_db()
        assert session.revoked_at is not None and session.revoke_reason == "admin"
    bob_session.refresh_from_db()
    assert bob_session.revoked_at is None


def test_sessions_admin_lists_filters_searches_and_revokes(
    admin_client, alice, bob, open_session
):
    keep, revoke = open_session(alice).session, open_session(bob).session
    listing = admin_client.get("/admin/accounts/authsession/?q=bob&state=live")
    assert listing.status_code == 200
    assert f"{revoke.sid[:8]}" in listing.content.decode()
    assert f"{keep.sid[:8]}" not in listing.content.decode()
    run_action(admin_client, "/admin/accounts/authsession/", "revoke", [revoke.pk])
    assert AuthSession.objects.get(pk=revoke.pk).revoked_at is not None
    assert AuthSession.objects.get(pk=keep.pk).revoked_at is None
    revoked = admin_client.get("/admin/accounts/authsession/?state=revoked")
    assert f"{revoke.sid[:8]}" in revoked.content.decode()


def test_notify_action_needs_a_text(admin_client, alice):
    response = run_action(
        admin_client, "/admin/accounts/user/", "send_notification", [alice.pk], text=" "
    )
    assert "Type the notification text first." in response.content.decode()
    assert not Message.objects.exists()


@pytest.mark.asyncio
async def test_admin_actions_reach_live_sockets(admin_client, connect, alice, bob):
    """Notify: stored and delivered live; revoke: the socket closes with 4403."""
    alice_socket = await connect(alice)
    await db(
        run_action,
        admin_client,
        "/admin/accounts/user/",
        "send_notification",
        [alice.pk, bob.pk],
        text="maintenance at noon",
    )
    message = await alice_socket.receive_json_from(timeout=TIMEOUT)
    assert message["type"] == "message" and message["stream"] == "user"
    assert message["data"] == {"text": "maintenance at noon"}
    assert message["sender"] is None and message["id"] == 1
    stored = await db(lambda: sorted(Message.objects.values_list("stream", "seq")))
    assert stored == sorted([(f"user:{alice.pk}", 1), (f"user:{bob.pk}", 1)])

    await db(
        run_action, admin_client, "/admin/accounts/user/", "revoke_sessions", [alice.pk]
    )
    assert await alice_socket.receive_output(timeout=TIMEOUT) == {
        "type": "websocket.close",
        "code": CloseCode.REVOKED,
    }
