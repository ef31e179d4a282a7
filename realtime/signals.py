"""Room, membership and user changes → live subscriptions and stored history.

Signals see every path that changes them: the services, the admin (inline
membership deletion, the `public` checkbox, room deletion) and the shell.
`QuerySet.update()` bypasses them: call realtime.revalidation after it.
Messages are keyed by stream name, not by a foreign key: a deleted room or
user takes its history and counter along here, and a renamed room carries
them to its new name.
"""

from django.conf import settings
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from realtime.history import stream_history_delete, stream_history_rename
from realtime.models import Membership, Room
from realtime.revalidation import room_access_changed
from realtime.streams import room_stream, user_stream


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
    if created:
        # A new room starts empty. A publish that passed its check before an
        # earlier room of this slug was deleted, and committed after, left
        # its message and counter under the name: never show them here.
        # (`loaddata` restores rooms raw, with their history: left alone.)
        if not kwargs.get("raw"):
            stream_history_delete(name=room_stream(instance.slug).name)
        return
    before = getattr(instance, "_authsocket_before", None)
    if before is None:
        return
    old_slug, was_public = before
    if old_slug != instance.slug:
        stream_history_rename(
            old=room_stream(old_slug).name, new=room_stream(instance.slug).name
        )
        room_access_changed(slug=old_slug, gone=True)
    elif was_public and not instance.public:
        room_access_changed(slug=instance.slug)


@receiver(post_delete, sender=Room)
def room_deleted(sender, instance: Room, **kwargs) -> None:
    stream_history_delete(name=room_stream(instance.slug).name)
    room_access_changed(slug=instance.slug, gone=True)


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def user_deleted(sender, instance, **kwargs) -> None:
    stream_history_delete(name=user_stream(instance.pk).name)
