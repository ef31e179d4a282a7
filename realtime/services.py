"""Memberships: the writes behind the REST API and the demo data.

Who may do what is decided in realtime.permissions; these only change rows.
Rooms are made and edited in the admin. Live subscriptions are re-checked by
realtime.signals after every change, whoever makes it.
"""

from django.db import IntegrityError

from realtime.lost_rows import lost_rows_check
from realtime.models import Membership, Room


def membership_create(
    *, user, room: Room, role: str = Membership.Role.MEMBER
) -> Membership:
    """Idempotent: an existing membership is kept as it is.

    `Room.DoesNotExist` or `UserGone` when the room or the user was deleted
    since the caller read it (realtime.lost_rows).
    """
    try:
        membership, _ = Membership.objects.get_or_create(
            user=user, room=room, defaults={"role": role}
        )
    except IntegrityError:
        lost_rows_check(user=user, room=room)
        raise
    return membership


def membership_delete(*, user, room: Room) -> bool:
    """Leave or remove; False when there was no membership. Subscriptions end."""
    deleted, _ = Membership.objects.filter(user=user, room=room).delete()
    return bool(deleted)
