"""Read-only queries about sessions, shared by the API and the WebSocket side."""

from datetime import datetime

from django.db.models import Q

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
