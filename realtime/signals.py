"""Room and membership changes → re-check live subscriptions.

Signals see every path that changes them: the services, the admin (inline
membership deletion, the `public` checkbox, room deletion) and the shell.
`QuerySet.update()` bypasses them: call realtime.revalidation after it.
"""

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from realtime.models import Membership, Room
from realtime.revalidation import room_access_changed


@receiver(post_delete, sender=Membership)
def membership_deleted(sender, instance: Membership, origin=None, **kwargs) -> None:
    if isinstance(origin, Room) or getattr(origin, "model", None) is Room:
        return  # the room itself goes: room_deleted tells everyone at once
    room = Room.objects.filter(pk=instance.room_id).only("slug").first()
    if room is not None:
        room_access_changed(slug=room.slug, user_id=instance.user_id)


@receiver(pre_save, sender=Room)
def remember_room(sender, instance: Room, **kwargs) -> None:
    instance._authsocket_before = (
        Room.objects.filter(pk=instance.pk).values_list("slug", "public").first()
        if instance.pk
        else None
    )


@receiver(post_save, sender=Room)
def room_saved(sender, instance: Room, created: bool, **kwargs) -> None:
    before = getattr(instance, "_authsocket_before", None)
    if created or before is None:
        return
    old_slug, was_public = before
    if old_slug != instance.slug:
        room_access_changed(slug=old_slug, gone=True)
    elif was_public and not instance.public:
        room_access_changed(slug=instance.slug)


@receiver(post_delete, sender=Room)
def room_deleted(sender, instance: Room, **kwargs) -> None:
    room_access_changed(slug=instance.slug, gone=True)
