"""The one answer to "may user U read / publish stream S" (docs/protocol.md §2, §4.2).

The consumer and the REST views both ask here. An unknown room and a private
room the user is not in give the same answer (`HIDDEN`), so existence does not
leak; `FORBIDDEN` is only for what the user may already see (a public room he
has not joined, his own stream). The WebSocket says `forbidden` to both; REST
says 404 to `HIDDEN` and 403 to `FORBIDDEN`.
"""

from dataclasses import dataclass
from enum import Enum

from django.db.models import Exists, OuterRef

from realtime.models import Membership, Room
from realtime.streams import Stream


class Action(Enum):
    READ = "read"
    PUBLISH = "publish"
    JOIN = "join"  # only public rooms can be joined by the user himself


class Access(Enum):
    ALLOWED = "allowed"
    FORBIDDEN = "forbidden"  # visible to the user, but not this action
    HIDDEN = "hidden"  # unknown, malformed, or not the user's to see


@dataclass(frozen=True, slots=True)
class Decision:
    access: Access
    room: Room | None = None

    @property
    def allowed(self) -> bool:
        return self.access is Access.ALLOWED


HIDDEN = Decision(Access.HIDDEN)


def stream_access(*, user, stream: Stream | None, action: Action) -> Decision:
    """Decide one action on one stream (None: a name that did not parse)."""
    if stream is None or not user.is_authenticated or not user.is_active:
        return HIDDEN
    if not stream.is_room:
        return _user_stream_access(user, stream, action)
    return room_access(user=user, slug=stream.slug, action=action)


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
    if room.is_member:
        return Decision(Access.ALLOWED, room)
    if not room.public:
        return HIDDEN
    if action in (Action.READ, Action.JOIN):
        return Decision(Access.ALLOWED, room)
    return Decision(Access.FORBIDDEN, room)


def _user_stream_access(user, stream: Stream, action: Action) -> Decision:
    """Only the owner reads a user stream; nobody publishes to one by a client."""
    if stream.user_id != user.pk:
        return HIDDEN
    if action is Action.READ:
        return Decision(Access.ALLOWED)
    return Decision(Access.FORBIDDEN)  # clients never publish to user streams


def may_notify(user) -> bool:
    """Server notifications to any user's stream: staff only."""
    return bool(user.is_authenticated and user.is_active and user.is_staff)
