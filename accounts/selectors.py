"""Read-only queries about sessions, shared by the API and the WebSocket side."""

from datetime import datetime

from accounts.models import AuthSession, SessionRevocation


def live_session(*, sid: str, user_id: int) -> AuthSession | None:
    """The session if it belongs to `user_id`, is live and its user active.

    One query: the session and its user together. This is the rule every
    credential check uses (HTTP Bearer, WebSocket handshake, `auth` frame).
    """
    session = AuthSession.objects.select_related("user").filter(sid=sid).first()
    if (
        session is None
        or session.user_id != user_id
        or not session.is_live
        or not session.user.is_active
    ):
        return None
    return session


def revoked_sids_since(since: datetime) -> list[str]:
    """Sessions revoked at or after `since` (the revocation log, indexed)."""
    return list(
        SessionRevocation.objects.filter(revoked_at__gte=since).values_list(
            "sid", flat=True
        )
    )
