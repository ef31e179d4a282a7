"""Revoking sessions: the one service every trigger goes through.

The database is the source of truth (PROTOCOL §3). A revocation marks the
sessions, appends to the `SessionRevocation` log that every server process
polls, and after commit tells live sockets through the channel layer so they
close at once. The channel-layer message is only the fast path: if it is lost,
each process's poll (realtime.session_guard) closes the sockets within a second.

Bulk `QuerySet.update(is_active=False)` or `update(password=...)` bypass the
model signals that call this service: call `user_sessions_revoke()` after them.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import DatabaseError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import AuthSession, SessionRevocation
from authsocket import metrics
from realtime.groups import user_group
from realtime.session_guard import guard

logger = logging.getLogger(__name__)

# Not "session.revoked", the event of the per-session groups that came before:
# a process still running that version has no handler for this name and closes
# the socket 1011 (the client reconnects), rather than closing every socket of
# the user with 4403 (the client would believe it was logged out).
SESSION_REVOKED_EVENT = "sessions.revoked"


def sessions_revoke(*, sessions: QuerySet, reason: str) -> list[str]:
    """Revoke every still-live session of `sessions`; returns their sids."""
    # Inside a caller's transaction, the commit (and the rows' visibility to
    # other processes) may come long after `revoked_at`: re-stamp them then.
    nested = transaction.get_connection().in_atomic_block
    with transaction.atomic():
        rows = list(
            sessions.filter(revoked_at__isnull=True)
            .select_for_update()
            .values_list("pk", "sid", "user_id")
        )
        if not rows:
            return []
        # Stamped after the locks are held: the pollers' time window is
        # measured from here, so waiting for a lock does not eat into it.
        now = timezone.now()
        AuthSession.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(
            revoked_at=now, revoke_reason=reason
        )
        SessionRevocation.objects.bulk_create(
            SessionRevocation(sid=sid, user_id=user_id, revoked_at=now, reason=reason)
            for _, sid, user_id in rows
        )
        revoked = [(sid, user_id) for _, sid, user_id in rows]
        transaction.on_commit(lambda: _after_commit(revoked, now if nested else None))
    sids = [sid for sid, _ in revoked]
    logger.info("revoked %d session(s): %s", len(sids), reason)
    metrics.sessions_revoked(reason, len(sids))
    return sids


def session_revoke(*, session: AuthSession, reason: str) -> bool:
    """Revoke one session; False when it was already revoked."""
    return bool(
        sessions_revoke(
            sessions=AuthSession.objects.filter(pk=session.pk), reason=reason
        )
    )


def user_sessions_revoke(
    *, user_id: int, reason: str, keep_sid: str | None = None
) -> list[str]:
    """Revoke all sessions of a user, except `keep_sid` when given."""
    sessions = AuthSession.objects.filter(user_id=user_id)
    if keep_sid:
        sessions = sessions.exclude(sid=keep_sid)
    return sessions_revoke(sessions=sessions, reason=reason)


def _after_commit(revoked: list[tuple[str, int]], stamped_at) -> None:
    """`revoked` holds `(sid, user_id)` pairs."""
    sids = [sid for sid, _ in revoked]
    if stamped_at is not None:
        _restamp(sids, stamped_at)
    _notify_sockets(revoked)


def _restamp(sids: list[str], stamped_at) -> None:
    """Move `revoked_at` to the commit, into the window other processes poll.

    The poll reads the log a few seconds back; rows that became visible only
    when a long outer transaction committed would fall outside it.
    """
    try:
        SessionRevocation.objects.filter(sid__in=sids, revoked_at=stamped_at).update(
            revoked_at=timezone.now()
        )
    except DatabaseError:  # the rows stand; the poll's pk cursor may still see them
        logger.warning("could not re-stamp %d revocation(s) after commit", len(sids))


def _notify_sockets(revoked: list[tuple[str, int]]) -> None:
    """Fast path: tell the sessions' sockets to close now (best effort).

    One message per user, to the user's group, naming the revoked sessions.
    """
    guard.mark_revoked([sid for sid, _ in revoked])
    layer = get_channel_layer()
    if layer is None:
        return
    committed = timezone.now().timestamp()  # for the close delay (metrics)
    sids_by_user: dict[int, list[str]] = {}
    for sid, user_id in revoked:
        sids_by_user.setdefault(user_id, []).append(sid)
    try:
        for user_id, sids in sids_by_user.items():
            async_to_sync(layer.group_send)(
                user_group(user_id),
                {"type": SESSION_REVOKED_EVENT, "sids": sids, "revoked_at": committed},
            )
    except Exception:  # the database poll still closes them within a second
        metrics.channel_layer_error("group_send")
        logger.warning("channel layer unreachable; revocation left to the poll")
