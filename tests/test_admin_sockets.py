"""The admin's actions reach live sockets: notify delivers, revoke closes."""

import pytest

from accounts.models import AuthSession, SessionRevocation
from realtime.models import Message
from realtime.protocol import CloseCode
from realtime.tests import conftest as streams
from realtime.tests.conftest import TIMEOUT, db
from tests.api import run_action

pytestmark = pytest.mark.django_db(transaction=True)
connect = streams.connect  # the welcomed-socket fixture of the stream tests


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
