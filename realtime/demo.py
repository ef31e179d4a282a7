"""The demo rooms of docs/protocol.md §5, created idempotently by `manage.py demo_data`."""

from realtime.models import Membership, Room
from realtime.services import membership_create

DEMO_ROOMS = [
    # slug, title, public, members (the first one owns the room)
    ("lobby", "Lobby", True, None),
    ("team", "Team", False, ["alice", "bob"]),
    ("secret", "Secret", False, ["alice"]),
]


def demo_rooms_create(*, users: dict) -> list[Room]:
    """`users` maps usernames to users; `lobby` takes every one of them."""
    rooms = []
    for slug, title, public, member_names in DEMO_ROOMS:
        room, _ = Room.objects.get_or_create(
            slug=slug, defaults={"title": title, "public": public}
        )
        names = member_names if member_names is not None else list(users)
        for index, name in enumerate(names):
            role = Membership.Role.OWNER if index == 0 and member_names else "member"
            membership_create(user=users[name], room=room, role=role)
        rooms.append(room)
    return rooms
