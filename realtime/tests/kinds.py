"""Stream kinds declared only for tests, added to the registry by a fixture.

Rights live in plain sets on each kind, so a test changes them directly and
then says so through the public `rights_changed`.
"""

from realtime.kinds import Access, History, Publishers, StreamKind


class NoteKind(StreamKind):
    """`note:<key>`: readers read and publish, watchers only read; 3 kept."""

    name = "note"
    key_pattern = r"[a-z0-9]{1,20}"
    publishers = Publishers.CLIENTS
    history = History(max_per_stream=3, max_age=3600)

    def __init__(self) -> None:
        self.readers: set[tuple[str, int]] = set()  # (key, user id)
        self.watchers: set[tuple[str, int]] = set()

    def can_read(self, user, key: str) -> Access:
        if (key, user.pk) in self.readers:
            return Access.ALLOWED
        if (key, user.pk) in self.watchers:
            return Access.ALLOWED
        return Access.HIDDEN

    def can_publish(self, user, key: str) -> bool:
        return (key, user.pk) in self.readers


class TickerKind(StreamKind):
    """`tick:<key>`: anyone reads, the server publishes, nothing is kept."""

    name = "tick"
    key_pattern = r"[A-Za-z0-9 /]{1,90}"  # spaces and slashes: a hashed group
    publishers = Publishers.SERVER
    history = None

    def can_read(self, user, key: str) -> Access:
        return Access.ALLOWED


class FeedKind(StreamKind):
    """`feed:<key>`: visible to all but read by nobody; fed by project code only."""

    name = "feed"
    key_pattern = r"[0-9]{1,6}"
    publishers = Publishers.NOBODY

    def can_read(self, user, key: str) -> Access:
        return Access.FORBIDDEN

    def exists(self, key: str) -> bool:
        return key != "404"


class PathKind(StreamKind):
    """`path:<a/b/...>`: keys with slashes, addressed in URLs like any other."""

    name = "path"
    key_pattern = r"[a-z]+(/[a-z]+)*"
    publishers = Publishers.SERVER
    history = History(max_per_stream=10, max_age=3600)
    presence = True

    def can_read(self, user, key: str) -> Access:
        return Access.ALLOWED
