"""`credentials_prune`: what nothing can use goes, what proves a theft stays.

Pruning runs "in the future" (`now=`) instead of ageing rows by hand, so each
row is exactly as the services wrote it.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import pruning
from accounts.models import RefreshToken, SessionRevocation, WebSocketTicket
from accounts.pruning import credentials_prune
from accounts.revocation import session_revoke
from accounts.services import session_refresh, ticket_issue

pytestmark = pytest.mark.django_db

RETENTION = timedelta(seconds=settings.AUTHSOCKET_CREDENTIAL_RETENTION)


def refresh(token: str) -> tuple[int, str | None]:
    response = APIClient().post("/api/auth/refresh", {"refresh": token}, format="json")
    return response.status_code, response.json().get("code")


def test_a_live_sessions_rotated_tokens_stay_so_a_reuse_is_still_caught(
    alice, open_session, settings
):
    settings.AUTHSOCKET_REFRESH_GRACE = 0  # any reuse is one
    first = open_session(alice)
    second = session_refresh(refresh_token=first.refresh)
    session_refresh(refresh_token=second.refresh)
    # Far past the retention, but the session lives until its own expiry.
    pruned = credentials_prune(now=timezone.now() + RETENTION / 2)
    assert pruned["refresh tokens"] == 0
    assert refresh(first.refresh) == (401, "token_reused")


def test_an_ended_sessions_tokens_go_after_the_retention(alice, open_session):
    revoked, expired, live = (open_session(alice) for _ in range(3))
    session_revoke(session=revoked.session, reason="logout")
    expired.session.expires_at = timezone.now() - timedelta(seconds=1)
    expired.session.save()
    assert credentials_prune()["refresh tokens"] == 0  # still told why
    assert refresh(revoked.refresh) == (401, "revoked")
    assert refresh(expired.refresh) == (401, "session_expired")

    later = timezone.now() + RETENTION + timedelta(seconds=1)
    assert credentials_prune(now=later)["refresh tokens"] == 2
    assert refresh(revoked.refresh) == (401, "invalid_token")
    assert refresh(expired.refresh) == (401, "invalid_token")
    assert RefreshToken.objects.filter(session=live.session).exists()


def test_tickets_go_once_expired_and_the_log_after_the_retention(alice, open_session):
    tokens = open_session(alice)
    ticket_issue(session=tokens.session, access_expires_at=tokens.access_expires_at)
    session_revoke(session=open_session(alice).session, reason="logout")
    assert credentials_prune() == {
        "tickets": 0,
        "refresh tokens": 0,
        "revocation log rows": 0,
    }
    past_ticket = timezone.now() + timedelta(seconds=settings.AUTHSOCKET_TICKET_TTL + 1)
    assert credentials_prune(now=past_ticket)["tickets"] == 1
    assert not WebSocketTicket.objects.exists()
    later = timezone.now() + RETENTION + timedelta(seconds=1)
    assert credentials_prune(now=later)["revocation log rows"] == 1
    assert not SessionRevocation.objects.exists()


def test_it_deletes_in_batches(alice, open_session, monkeypatch):
    monkeypatch.setattr(pruning, "BATCH", 2)
    tokens = open_session(alice)
    for _ in range(5):
        ticket_issue(session=tokens.session, access_expires_at=tokens.access_expires_at)
    later = timezone.now() + timedelta(seconds=settings.AUTHSOCKET_TICKET_TTL + 1)
    assert credentials_prune(now=later)["tickets"] == 5


def test_the_command_says_what_it_deleted(alice, open_session, capsys):
    session_revoke(session=open_session(alice).session, reason="logout")
    call_command("prune_credentials")
    assert capsys.readouterr().out.splitlines() == [
        "tickets: 0 deleted",
        "refresh tokens: 0 deleted",
        "revocation log rows: 0 deleted",
    ]
