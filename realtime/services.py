"""Rooms and memberships: the writes behind the REST API, admin and demo data.

Who may do what is decided in realtime.permissions; these only change rows.
Live subscriptions are re-checked by realtime.signals after each change.
"""

from realtime.models import Membership, Room


def room_create(
    *, slug: str, title: str = "", public: bool = False, owner=None
) -> Room:
    room = Room(slug=slug, title=title or slug, public=public)
    room.full_clean()
    room.save()
    if owner is not None:
        membership_create(user=owner, room=room, role=Membership.Role.OWNER)
    return room


def membership_create(
    *, user, room: Room, role: str = Membership.Role.MEMBER
) -> Membership:
    """Idempotent: an existing membership is kept as it is."""
    membership, _ = Membership.objects.get_or_create(
        user=user, room=room, defaults={"role": role}
    )
    return membership


def membership_delete(*, user, room: Room) -> bool:
    """Leave or remove; False when there was no membership. Subscriptions end."""
    deleted, _ = Membership.objects.filter(user=user, room=room).delete()
    return bool(deleted)


def room_update(
    *, room: Room, title: str | None = None, public: bool | None = None
) -> Room:
    """Making a room private ends non-members' subscriptions (via the signal)."""
    if title is not None:
        room.title = title
    if public is not None:
        room.public = public
    room.full_clean()
    room.save()
    return room


def room_delete(*, room: Room) -> None:
    """The room, its memberships and messages go; subscribers are told."""
    room.delete()
