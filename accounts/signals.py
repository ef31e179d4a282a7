"""Revoke sessions whenever a user's credentials or standing change.

Signals are the only hook that sees every path that changes a password or
deactivates a user: the API, the admin form, `changepassword`, password reset.
Each handler only calls the revocation service. Bulk `QuerySet.update()`
bypasses them; see accounts.revocation.
"""

from django.db.models.signals import post_save, pre_delete, pre_save
from django.dispatch import receiver

from accounts.models import User
from accounts.revocation import user_sessions_revoke

_WATCHED = {"password", "is_active"}


@receiver(pre_save, sender=User)
def remember_credentials(sender, instance: User, update_fields=None, **kwargs) -> None:
    """Load the stored hash and active flag, to compare after the save."""
    instance._authsocket_before = None
    if instance.pk is None or (update_fields and not _WATCHED & set(update_fields)):
        return
    if getattr(instance, "_authsocket_rehashing", False):
        return  # a hash upgrade during check_password: same password
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
        keep_sid = getattr(instance, "_authsocket_keep_sid", None)
        user_sessions_revoke(
            user_id=instance.pk, reason="password_changed", keep_sid=keep_sid
        )
    instance._authsocket_keep_sid = None


@receiver(pre_delete, sender=User)
def revoke_on_delete(sender, instance: User, **kwargs) -> None:
    user_sessions_revoke(user_id=instance.pk, reason="user_deleted")
