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
from accounts.revocation import sessions_revoke, user_sessions_revoke

_WATCHED = {"password", "is_active"}


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
    user_sessions_revoke(user_id=instance.pk, reason="user_deleted")


@receiver(pre_delete, sender=AuthSession)
def revoke_on_session_delete(
    sender, instance: AuthSession, origin=None, **kwargs
) -> None:
    """Log a deleted session as revoked, so every process closes its sockets.

    When the deletion comes from its user's (the cascade), `revoke_on_delete`
    revokes every session of the user once, as `user_deleted`.
    """
    if isinstance(origin, User) or (
        isinstance(origin, QuerySet) and origin.model is User
    ):
        return
    sessions_revoke(
        sessions=AuthSession.objects.filter(pk=instance.pk), reason="session_deleted"
    )
