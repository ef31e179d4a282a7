"""The one answer to "may user U read / publish stream S" (docs/protocol.md §2, §4.2).

The consumer and the REST views both ask here; each stream's kind
(realtime/kind_registry.py) decides for its own streams. A stream that
does not exist and one the user may not see give the same answer
(`HIDDEN`), so existence does not leak; `FORBIDDEN` is only for what the
user may already see (a public room he has not joined, his own stream).
The WebSocket says `forbidden` to both; REST says 404 to `HIDDEN` and 403
to `FORBIDDEN`.
"""

from dataclasses import dataclass
from enum import Enum

from django.db.models import Exists, OuterRef

from realtime.kind_registry import Access, Publishers
from realtime.models import Membership, Room
from realtime.protocol import ROOM_KIND
from realtime.streams import Stream


class Action(Enum):
    READ = "read"
    PUBLISH = "publish"
    JOIN = "join"  # only public rooms can be joined by the user himself


@dataclass(frozen=True, slots=True)
class Decision:
    access: Access
    room: Room | None = None

    @property
    def allowed(self) -> bool:
        return self.access is Access.ALLOWED


HIDDEN = Decision(Access.HIDDEN)


def stream_access(*, user, stream: Stream | None, action: Action) -> Decision:
    """Decide one action of a user on one stream (None: a name that did not parse)."""
    if stream is None or not user.is_authenticated or not user.is_active:
        return HIDDEN
    kind, key = stream.kind, stream.key
    if kind.fresh_user:
        user = _as_stored(user)
        if user is None or not user.is_active:
            return HIDDEN
    if action is Action.READ:
        return Decision(_checked(kind, "can_read", kind.can_read(user, key)))
    if action is Action.PUBLISH and kind.publishers is Publishers.CLIENTS:
        access = kind.publish_access(user, key)
        return Decision(_checked(kind, "publish_access", access))
    if action is Action.JOIN and kind.name == ROOM_KIND:
        return room_access(user=user, slug=key, action=action)
    # Hidden stays hidden, whatever the action.
    read = _checked(kind, "can_read", kind.can_read(user, key))
    return HIDDEN if read is Access.HIDDEN else Decision(Access.FORBIDDEN)


def _checked(kind, method: str, access) -> Access:
    """A kind's answer, which must be an `Access`: a `True` would refuse
    everyone without a word (only `Access.ALLOWED` allows)."""
    if not isinstance(access, Access):
        raise TypeError(
            f"{kind!r}.{method}() must return realtime.kinds.Access (ALLOWED, "
            f"FORBIDDEN or HIDDEN), not {access!r}."
        )
    return access


def _as_stored(user):
    """The user as the database holds him now, or None if he is gone.

    A socket keeps the user object of its handshake for hours: a kind that
    reads `is_staff` or `has_perm()` (Django caches permissions on the
    object) would answer as at connection time, and `rights_changed` after
    taking a right away would change nothing.
    """
    return type(user)._default_manager.filter(pk=user.pk).first()


def room_access(*, user, slug: str, action: Action) -> Decision:
    """Rooms: public ones are readable by all, everything else needs membership."""
    room = (
        Room.objects.filter(slug=slug)
        .annotate(
            is_member=Exists(Membership.objects.filter(room=OuterRef("pk"), user=user))
        )
        .first()
    )
    if room is None:
        return HIDDEN
    if action is Action.JOIN and not room.public:
        # Members are added to a private room, never join it themselves: the
        # API answers 404, for members too (docs/protocol.md §2).
        return HIDDEN
    if room.is_member:
        return Decision(Access.ALLOWED, room)
    if not room.public:
        return HIDDEN
    if action in (Action.READ, Action.JOIN):
        return Decision(Access.ALLOWED, room)
    return Decision(Access.FORBIDDEN, room)


def may_notify(user) -> bool:
    """Server notifications to any user's stream: staff only."""
    return bool(user.is_authenticated and user.is_active and user.is_staff)
