"""The app's stream kinds, found at startup by realtime."""

from realtime.kinds import Access, History, Publishers, StreamKind, register

MEMO_GROUP_PREFIX = "memo-"


def memo_group(key: str) -> str:
    return f"{MEMO_GROUP_PREFIX}{key}"


@register
class MemoKind(StreamKind):
    """`memo:<key>`: the members of the group `memo-<key>` read and write."""

    name = "memo"
    key_pattern = r"[a-z0-9]{1,32}"
    publishers = Publishers.CLIENTS
    history = History(max_per_stream=3)

    def can_read(self, user, key: str) -> Access:
        if user.groups.filter(name=memo_group(key)).exists():
            return Access.ALLOWED
        return Access.HIDDEN

    def can_publish(self, user, key: str) -> bool:
        return True  # every reader writes


@register
class BoardKind(StreamKind):
    """`board:<key>`: everyone reads; only the project's own code publishes."""

    name = "board"
    key_pattern = r"[a-z]{1,16}"
    publishers = Publishers.NOBODY
    history = None

    def can_read(self, user, key: str) -> Access:
        return Access.ALLOWED
