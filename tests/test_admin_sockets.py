"""The admin's actions reach live sockets: notify delivers, revoke closes;
and only staff allowed to change what an action changes may run it."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import AuthSession, ServiceKey, SessionRevocation
from accounts.service_keys import service_key_create
from realtime.models import Message
from realtime.protocol import CloseCode
from realtime.tests.conftest import TIMEOUT, db
from tests.api import run_action

pytestmark = pytest.mark.django_db(transaction=True)


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


@pytest.mark.asyncio
async def test_deleting_a_login_session_in_the_admin_closes_its_socket(
    admin_client, connect, alice
):
    """Deleting is revoking: logged, so every process closes the socket (4403)."""
    alice_socket = await connect(alice)
    sessions = await db(lambda: list(AuthSession.objects.filter(user=alice)))
    await db(
        run_action,
        admin_client,
        "/admin/accounts/authsession/",
        "delete_selected",
        [session.pk for session in sessions],
        post="yes",
    )
    assert await alice_socket.receive_output(timeout=TIMEOUT) == {
        "type": "websocket.close",
        "code": CloseCode.REVOKED,
    }
    assert not await db(AuthSession.objects.filter(user=alice).exists)
    reasons = await db(
        lambda: set(SessionRevocation.objects.values_list("reason", flat=True))
    )
    assert reasons == {"session_deleted"}


def test_staff_who_may_only_view_cannot_revoke(make_user, alice, open_session):
    """Django runs a list's actions for whoever may view the list, unless an
    action names the permission it needs: a helper given read-only access to
    users, sessions and keys (e.g. to open "connected now") must not sign
    anyone out, superusers included, nor cut a backend off."""
    open_session(alice)
    service_key_create(name="billing")
    viewer = make_user("viewer", "pw-viewer-123", is_staff=True)
    viewer.user_permissions.set(
        Permission.objects.filter(
            codename__in=["view_user", "view_authsession", "view_servicekey"]
        )
    )
    client = Client()
    client.force_login(viewer)
    session, key = AuthSession.objects.get(user=alice), ServiceKey.objects.get()
    for url, action, pk in [
        ("/admin/accounts/user/", "revoke_sessions", alice.pk),
        ("/admin/accounts/authsession/", "revoke", session.pk),
        ("/admin/accounts/servicekey/", "revoke", key.pk),
    ]:
        run_action(client, url, action, [pk])
    session.refresh_from_db()
    key.refresh_from_db()
    assert (session.revoked_at, key.revoked_at) == (None, None)
