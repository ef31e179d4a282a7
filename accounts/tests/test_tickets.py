"""One-time WebSocket tickets (docs/protocol.md §2 `POST /api/auth/ticket`, §3)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.errors import InvalidTicket
from accounts.models import WebSocketTicket
from accounts.services import credential_hash, ticket_consume
from tests.api import ticket_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_ticket_is_stored_only_as_a_hash(alice, open_session, settings):
    settings.AUTHSOCKET_TICKET_TTL = 30
    tokens = open_session(alice)
    status, body = ticket_for(tokens)
    assert status == 200 and body["expires_in"] == 30
    stored = WebSocketTicket.objects.get()
    assert stored.ticket_hash == credential_hash(body["ticket"])
    assert body["ticket"] not in stored.ticket_hash
    assert stored.session == tokens.session
    assert stored.access_expires_at == tokens.access_expires_at


def test_ticket_is_consumed_once(alice, open_session):
    _, body = ticket_for(open_session(alice))
    assert ticket_consume(ticket=body["ticket"]).used_at is not None
    with pytest.raises(InvalidTicket):
        ticket_consume(ticket=body["ticket"])


def test_expired_ticket_is_refused(alice, open_session):
    _, body = ticket_for(open_session(alice))
    WebSocketTicket.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(InvalidTicket):
        ticket_consume(ticket=body["ticket"])


def test_ticket_issue_is_throttled_per_user(alice, bob, open_session, settings):
    settings.AUTHSOCKET_TICKET_THROTTLE = "2/min"
    tokens = open_session(alice)
    assert [ticket_for(tokens)[0] for _ in range(3)] == [200, 200, 429]
    assert ticket_for(open_session(alice))[0] == 429  # per user, not per session
    assert ticket_for(open_session(bob))[0] == 200


def test_ticket_needs_a_bearer_token():
    response = APIClient().post("/api/auth/ticket")
    assert response.status_code == 401
