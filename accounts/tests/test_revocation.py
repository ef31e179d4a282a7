"""Revocation inside accounts: the service marks the rows, then announces once.

That the announcement closes live sockets is tested with the sockets, in
tests/test_revocation_sockets.py.
"""

import pytest

from accounts.models import AuthSession, SessionRevocation, User
from accounts.revocation import user_sessions_revoke

pytestmark = pytest.mark.django_db(transaction=True)


def test_bulk_update_bypasses_the_signals_and_the_service_closes_the_gap(
    alice, open_session
):
    """Documented in docs/security.md: call user_sessions_revoke() after bulk updates."""
    tokens = open_session(alice)
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert AuthSession.objects.get(pk=tokens.session.pk).revoked_at is None
    assert user_sessions_revoke(user_id=alice.pk, reason="deactivated") == [
        tokens.session.sid
    ]
    assert AuthSession.objects.get(pk=tokens.session.pk).revoked_at is not None


def test_revocation_is_announced_once_after_commit(alice, bob, open_session):
    """accounts only announces: `(sid, user_id)` pairs and the logged time."""
    from django.db import transaction

    from accounts.signals import sessions_revoked

    heard = []

    def listener(sender, **kwargs):
        heard.append(kwargs)

    alices = [open_session(alice).session.sid for _ in range(2)]
    open_session(bob)
    sessions_revoked.connect(listener)
    try:
        with transaction.atomic():
            user_sessions_revoke(user_id=alice.pk, reason="test")
            assert heard == []  # not before the rows are visible to others
    finally:
        sessions_revoked.disconnect(listener)
    assert len(heard) == 1
    assert sorted(heard[0]["revoked"]) == sorted((sid, alice.pk) for sid in alices)
    logged = set(SessionRevocation.objects.values_list("revoked_at", flat=True))
    assert logged == {heard[0]["revoked_at"]}
