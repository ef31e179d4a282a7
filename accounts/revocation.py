"""Revoking sessions: the one service every trigger goes through.

The database is the source of truth (docs/security.md). A revocation marks
the sessions and appends to the `SessionRevocation` log that every server
process polls; after commit it announces them with
`accounts.signals.sessions_revoked`, so that whoever holds live connections
can close them at once: accounts knows nothing of sockets.

Bulk `QuerySet.update(is_active=False)` or `update(password=...)` bypass the
model signals that call this service: call `user_sessions_revoke()` after them.

LOCK ORDER. Every transaction that locks (or writes) both a user's row and
rows of its login sessions takes them in this order, and only this order:

1. the user's row (`users_lock`; several users in ascending pk order);
2. then its sessions, in ascending pk order (`user_sessions_lock`,
   `sessions_revoke`);
3. then their refresh tokens and tickets.

A path may skip a step (logout locks sessions only) but never go back up one.
On PostgreSQL, two transactions that take the user and its sessions in
opposite orders wait for each other: one is aborted with a deadlock error,
and its request answers 500. The paths, checked by
accounts/tests/test_concurrency_audit.py: login (`_credentials_hold`: user,
then inserts its session), password change (`_caller_hold`: user, then every
session of it), a save of a new hash or of `is_active=False` (the UPDATE locks
the user, then the post_save receiver revokes), deletion (the pre_delete
receiver and the admin lock the user before anything else; Django then
deletes the sessions, sorted by pk), refresh and a ticket's issue (one
session only, then its token or ticket), logout,
logout-others, logout-all, the server API's and the admin's revocations, a
deletion of sessions alone (sessions only). None of them can deadlock with
another, so none retries.
"""

import logging

from django.db import DatabaseError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import AuthSession, SessionRevocation
from accounts.signals import sessions_revoked
from core import metrics

logger = logging.getLogger(__name__)


def users_lock(users: QuerySet, *, deleting: bool = False) -> QuerySet:
    """`users` to evaluate inside a transaction, locking their rows: step 1
    of the lock order above, so it comes before any session is locked.

    A deletion takes the row's FOR UPDATE lock at once (the DELETE needs it):
    a weaker lock upgraded later would wait, too late, behind another path's.
    """
    return users.select_for_update(no_key=not deleting).order_by("pk")


def user_sessions_lock(*, user_id: int) -> list[tuple[int, str]]:
    """Lock every session of a user (step 2); their `(pk, sid)`, live or not.

    For a transaction that will write more than one of them: taking them all
    at once, in pk order, is what keeps two such transactions from each
    holding one the other wants.
    """
    return list(
        AuthSession.objects.filter(user_id=user_id)
        .order_by("pk")
        .select_for_update()
        .values_list("pk", "sid")
    )


def sessions_revoke(*, sessions: QuerySet, reason: str) -> list[str]:
    """Revoke every still-live session of `sessions`; returns their sids."""
    # Inside a caller's transaction, the commit (and the rows' visibility to
    # other processes) may come long after `revoked_at`: re-stamp them then.
    nested = transaction.get_connection().in_atomic_block
    with transaction.atomic():
        rows = list(
            sessions.filter(revoked_at__isnull=True)
            .order_by("pk")  # the lock order's step 2, whatever the caller's
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
        transaction.on_commit(lambda: _after_commit(revoked, now, restamp=nested))
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


def _after_commit(revoked: list[tuple[str, int]], revoked_at, *, restamp) -> None:
    """`revoked` holds `(sid, user_id)` pairs; announce them once committed."""
    if restamp:
        revoked_at = _restamp([sid for sid, _ in revoked], revoked_at)
    # Robust: the rows are committed; a failing listener must not fail the caller.
    sessions_revoked.send_robust(
        sender=AuthSession, revoked=revoked, revoked_at=revoked_at
    )


def _restamp(sids: list[str], stamped_at):
    """Move `revoked_at` to the commit, into the window other processes poll.

    The poll reads the log a few seconds back; rows that became visible only
    when a long outer transaction committed would fall outside it. Returns the
    time the rows now carry.
    """
    now = timezone.now()
    try:
        SessionRevocation.objects.filter(sid__in=sids, revoked_at=stamped_at).update(
            revoked_at=now
        )
    except DatabaseError:  # the rows stand; the poll's pk cursor may still see them
        logger.warning("could not re-stamp %d revocation(s) after commit", len(sids))
        return stamped_at
    return now
