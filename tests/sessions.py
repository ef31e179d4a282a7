"""A session revoked behind this process's back, as another process would."""

from django.utils import timezone

from accounts.models import AuthSession, SessionRevocation


def revoke_as_another_process(session: AuthSession, revoked_at=None) -> None:
    """The database only: no channel-layer message, no mark in this process."""
    now = revoked_at or timezone.now()
    AuthSession.objects.filter(pk=session.pk).update(revoked_at=now)
    SessionRevocation.objects.create(
        sid=session.sid, user_id=session.user_id, revoked_at=now, reason="test"
    )
