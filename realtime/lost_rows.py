"""Writes that lost a row they refer to: a room or a user deleted meanwhile.

Django makes PostgreSQL check foreign keys at commit. A join or a publish that
read its room and its user, then commits after a deletion of either, fails
there with an IntegrityError. `lost_rows_check` names what was lost, so that
each interface answers it as it answers a missing room (404) or a revoked
session (401, or `forbidden` on a socket about to close 4403); an
IntegrityError with both rows present is a bug and keeps its traceback.
"""

from django.contrib.auth import get_user_model

from accounts.errors import SessionRevoked
from realtime.models import Room


class UserGone(SessionRevoked):
    default_detail = "The user was deleted."


def lost_rows_check(*, user=None, room: Room | None = None) -> None:
    """Raise `Room.DoesNotExist` or `UserGone` for a row deleted since the
    caller read it; return when both are still there."""
    if room is not None and not Room.objects.filter(pk=room.pk).exists():
        raise Room.DoesNotExist(f"The room {room.slug!r} was deleted.")
    if user is not None and not get_user_model().objects.filter(pk=user.pk).exists():
        raise UserGone()
