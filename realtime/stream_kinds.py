"""The built-in stream kinds, `user` and `room`, declared through the public API.

`user` is special in two places only, both outside this module: the bare
alias `user` (realtime.streams) and every socket being subscribed to its own
from the start (realtime.subscriptions).
"""

from django.contrib.auth import get_user_model

from realtime.kinds import Access, Publishers, StreamKind, register
from realtime.models import Room
from realtime.permissions import Action, room_access
from realtime.protocol import ROOM_KIND, ROOM_SLUG_PATTERN, USER_ID_PATTERN, USER_KIND


@register
class UserKind(StreamKind):
    """`user:<id>`: one user's private notifications, read by him alone."""

    name = USER_KIND
    key_pattern = USER_ID_PATTERN
    publishers = Publishers.SERVER
    fresh_user = False  # only the id is read

    def can_read(self, user, key: str) -> Access:
        return Access.ALLOWED if key == str(user.pk) else Access.HIDDEN

    def exists(self, key: str) -> bool:
        return get_user_model().objects.filter(pk=int(key)).exists()


@register
class RoomKind(StreamKind):
    """`room:<slug>`: public rooms are read by all, private ones by members."""

    name = ROOM_KIND
    key_pattern = ROOM_SLUG_PATTERN
    publishers = Publishers.CLIENTS
    presence = True
    fresh_user = False  # only the id is read (memberships are rows)

    def can_read(self, user, key: str) -> Access:
        return room_access(user=user, slug=key, action=Action.READ).access

    def publish_access(self, user, key: str) -> Access:
        """Members only, public room or not: one query decides both rights."""
        return room_access(user=user, slug=key, action=Action.PUBLISH).access

    def exists(self, key: str) -> bool:
        return Room.objects.filter(slug=key).exists()
