"""Read-only queries about sessions, shared by the API and the WebSocket side."""

from datetime import datetime
from enum import StrEnum

from django.db.models import Q
from django.utils import timezone

from accounts.models import AuthSession, SessionRevocation


class Refusal(StrEnum):
    """Why a session cannot be used, for the logs (clients only see "refused")."""

    UNKNOWN = "unknown"
    WRONG_USER = "wrong_user"
    REVOKED = "revoked"
    EXPIRED = "expired"
    USER_INACTIVE = "user_inactive"


def session_refusal(session: AuthSession | None, *, user_id: int) -> Refusal | None:
    """The one rule: None when the session is the user's, live, and its user active."""
    if session is None:
        return Refusal.UNKNOWN
    if session.user_id != user_id:
        return Refusal.WRONG_USER
    if session.revoked_at is not None:
        return Refusal.REVOKED
    if session.expires_at <= timezone.now():
        return Refusal.EXPIRED
    if not session.user.is_active:
        return Refusal.USER_INACTIVE
    return None


def live_session(*, sid: str, user_id: int) -> AuthSession | None:
    """The session (with its user, one query) if `session_refusal` has none."""
    session = AuthSession.objects.select_related("user").filter(sid=sid).first()
    return None if session_refusal(session, user_id=user_id) else session


def sessions_by_sid(sids: list[str]) -> dict[str, AuthSession]:
    """Many sessions with their users in one query (batched handshakes)."""
    sessions = AuthSession.objects.select_related("user").filter(sid__in=sids)
    return {session.sid: session for session in sessions}


def sessions_used_since(since: datetime, *, limit: int) -> list[AuthSession]:
    """Live sessions that logged in or refreshed at or after `since`, with users.

    Only these can hold an unexpired access token, so a process that knows
    them answers nearly every handshake from memory.
    """
    return list(
        AuthSession.objects.live()
        .select_related("user")
        .filter(last_used_at__gte=since, user__is_active=True)
        .order_by("-last_used_at")[:limit]
    )


def revocations_since(
    since: datetime, after_pk: int | None = None
) -> tuple[list[str], int | None]:
    """Sessions revoked at or after `since`, or logged after row `after_pk`.

    Returns `(sids, highest pk seen)`. The time window catches rows committed
    late with a small pk (PostgreSQL); the pk catches rows whose `revoked_at`
    is older than the window because their commit waited on a lock (SQLite
    serializes writers, so its pks follow commit order).
    """
    recent = Q(revoked_at__gte=since)
    if after_pk is not None:
        recent |= Q(pk__gt=after_pk)
    rows = list(SessionRevocation.objects.filter(recent).values_list("pk", "sid"))
    pks = [pk for pk, _ in rows] + ([] if after_pk is None else [after_pk])
    return [sid for _, sid in rows], max(pks, default=None)
