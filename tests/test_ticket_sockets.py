"""A one-time ticket opens one socket, and none once it is spent or stale."""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import WebSocketTicket
from realtime.tests.sockets import db, refused, welcomed
from tests.api import api_client, ticket_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_ticket_opens_one_socket_and_only_one(ws, alice, open_session):
    tokens = await db(open_session, alice)
    _, body = await db(ticket_for, tokens)
    first = ws(f"ticket={body['ticket']}")
    await welcomed(first)
    assert await refused(ws(f"ticket={body['ticket']}"))
    await first.disconnect()


async def test_expired_ticket_is_refused_at_the_handshake(ws, alice, open_session):
    tokens = await db(open_session, alice)
    _, body = await db(ticket_for, tokens)
    await db(
        WebSocketTicket.objects.update,
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert await refused(ws(f"ticket={body['ticket']}"))


async def test_ticket_of_a_revoked_session_is_refused(ws, alice, open_session):
    tokens = await db(open_session, alice)
    _, body = await db(ticket_for, tokens)
    assert (await db(api_client(tokens).post, "/api/auth/logout")).status_code == 204
    assert await refused(ws(f"ticket={body['ticket']}"))


async def test_ticket_whose_access_token_expired_is_refused(ws, alice, open_session):
    tokens = await db(open_session, alice)
    _, body = await db(ticket_for, tokens)
    await db(WebSocketTicket.objects.update, access_expires_at=1)
    assert await refused(ws(f"ticket={body['ticket']}"))


@pytest.mark.parametrize("past_exp, opens", [(-3, True), (1, False)])
async def test_a_ticket_keeps_the_leeway_of_its_access_token(
    ws, alice, open_session, past_exp, opens
):
    """A token in its leeway still opens a socket with `?token=` and still gets
    a ticket: the ticket dies with it at `exp` + leeway, not at `exp`."""
    tokens = await db(open_session, alice)
    _, body = await db(ticket_for, tokens)
    exp = int(time.time()) - settings.AUTHSOCKET_LEEWAY - past_exp
    await db(WebSocketTicket.objects.update, access_expires_at=exp)
    communicator = ws(f"ticket={body['ticket']}")
    if opens:
        await welcomed(communicator)
        await communicator.disconnect()
    else:
        assert await refused(communicator)
