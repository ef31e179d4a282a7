"""`manage.py notify <username> <text>` (docs/protocol.md §5)."""

import io

import pytest
from django.core.management import CommandError, call_command

from realtime.models import Message
from realtime.tests.conftest import TIMEOUT, db

pytestmark = pytest.mark.django_db(transaction=True)


def notify(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("notify", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_notify_stores_text_on_the_users_stream_and_warns_without_redis(
    alice, settings
):
    settings.REDIS_URL = ""
    out, err = notify("alice", "hello there")
    message = Message.objects.get(stream=f"user:{alice.pk}")
    assert (message.seq, message.sender, message.data) == (
        1,
        None,
        {"text": "hello there"},
    )
    assert "REDIS_URL is not set" in err


def test_notify_unknown_user_fails(alice):
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        notify("nobody", "x")


@pytest.mark.asyncio
async def test_notify_reaches_a_live_socket_in_this_process(connect, alice):
    socket = await connect(alice)
    await db(notify, "alice", "ping from the shell")
    frame = await socket.receive_json_from(timeout=TIMEOUT)
    assert frame["stream"] == "user" and frame["data"] == {
        "text": "ping from the shell"
    }
