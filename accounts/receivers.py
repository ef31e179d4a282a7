"""Revoke sessions whenever a user's credentials or standing change.

Model signals are the only hook that sees every path that changes a password
or deactivates a user: the admin form, `changepassword`, password reset, the
shell. Deleting a login session (the sessions admin's delete, the shell) is
revoking it too: without a log row no other process would learn that it is
gone. Each receiver only calls the revocation service. Two writes skip them
on purpose, with a queryset UPDATE: `services.password_change`, which revokes
itself and keeps the caller's session, and the hash upgrade of
`User.check_password` (same password). Other bulk `QuerySet.update()` calls
bypass them too; see accounts.revocation.
"""

from django.db.models import QuerySet
from django.db.models.signals import post_save, pre_delete, pre_save
from django.dispatch import receiver

from accounts.models import AuthSession, User
from accounts.revocation import sessions_revoke, user_sessions_revoke, users_lock

_WATCHED = {"password", "is_active"}
# Set on a deletion's origin (a user or a queryset of users): the pks of the
# sessions Django collected, and will delete, with the user.
_COLLECTED = "_authsocket_sessions_collected"


@receiver(pre_save, sender=User)
def remember_credentials(sender, instance: User, update_fields=None, **kwargs) -> None:
    """Snapshot the stored hash and active flag for the post_save receiver below."""
    instance._authsocket_before = None
    if instance.pk is None or (update_fields and not _WATCHED & set(update_fields)):
        return
    instance._authsocket_before = (
        User.objects.filter(pk=instance.pk).values_list("password", "is_active").first()
    )


@receiver(post_save, sender=User)
def revoke_on_credential_change(
    sender, instance: User, created: bool, **kwargs
) -> None:
    before = getattr(instance, "_authsocket_before", None)
    if created or before is None:
        return
    old_password, was_active = before
    if was_active and not instance.is_active:
        user_sessions_revoke(user_id=instance.pk, reason="deactivated")
    elif old_password != instance.password:
        user_sessions_revoke(user_id=instance.pk, reason="password_changed")


@receiver(pre_delete, sender=User)
def revoke_on_delete(sender, instance: User, **kwargs) -> None:
    """Revoke the user's sessions, its row locked first (the lock order of
    accounts.revocation).

    Its sessions' rows are deleted first and its own last: without this lock,
    a password change holding the user's row and waiting for a session would
    wait for this deletion while it waits for that row, a deadlock.
    """
    users = User.objects.filter(pk=instance.pk)
    list(users_lock(users, deleting=True).values_list("pk", flat=True))
    user_sessions_revoke(user_id=instance.pk, reason="user_deleted")
    _sessions_made_since_collected_delete(instance, kwargs.get("origin"))


def _sessions_made_since_collected_delete(user: User, origin) -> None:
    """Delete the sessions a login stored after Django collected the user's.

    Django reads what a deletion cascades to before this lock is taken: a
    login that held the row and committed meanwhile left a session the
    collector does not know, and the user's DELETE would fail on it at
    commit (an IntegrityError). The admin locks before collecting and finds
    none here; `user.delete()` and `QuerySet.delete()` elsewhere may.
    """
    collected = getattr(origin, _COLLECTED, ())
    AuthSession.objects.filter(user_id=user.pk).exclude(pk__in=collected).delete()


@receiver(pre_delete, sender=AuthSession)
def revoke_on_session_delete(
    sender, instance: AuthSession, origin=None, **kwargs
) -> None:
    """Log a deleted session as revoked, so every process closes its sockets.

    When the deletion comes from its user's (the cascade), `revoke_on_delete`
    revokes every session of the user once, as `user_deleted`. Several
    sessions deleted at once come here in pk order (Django sorts them), the
    lock order of accounts.revocation.
    """
    if isinstance(origin, User) or (
        isinstance(origin, QuerySet) and origin.model is User
    ):
        # Signalled before its user's (Django deletes the sessions first).
        setattr(origin, _COLLECTED, {*getattr(origin, _COLLECTED, ()), instance.pk})
        return
    sessions_revoke(
        sessions=AuthSession.objects.filter(pk=instance.pk), reason="session_deleted"
    )
