"""Read-only queries about sessions, shared by the API and the WebSocket side."""

from datetime import datetime

from accounts.models import AuthSession, SessionRevocation


def session_accepts(session: AuthSession | None, *, user_id: int) -> bool:
    """The one rule: the session is the user's, live, and its user active."""
    return (
        session is not None
        and session.user_id == user_id
        and session.is_live
        and session.user.is_active
    )


def live_session(*, sid: str, user_id: int) -> AuthSession | None:
    """The session (with its user, one query) if `session_accepts` it."""
    session = AuthSession.objects.select_related("user").filter(sid=sid).first()
    return session if session_accepts(session, user_id=user_id) else None


def sessions_by_sid(sids: list[str]) -> dict[str, AuthSession]:
    """Many sessions with their users in one query (batched handshakes)."""
    sessions = AuthSession.objects.select_related("user").filter(sid__in=sids)
    return {session.sid: session for session in sessions}


def revoked_sids_since(since: datetime) -> list[str]:
    """Sessions revoked at or after `since` (the revocation log, indexed)."""
    return list(
        SessionRevocation.objects.filter(revoked_at__gte=since).values_list(
            "sid", flat=True
        )
    )
