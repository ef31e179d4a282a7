"""`benchp:<key>` keeps presence, `benchn:<key>` does not; nothing else differs.

Anyone may read and publish, and nothing is stored, so neither kind touches
the database after the handshake: what differs between them is presence.
"""

from realtime.kinds import Access, Publishers, StreamKind, register

PRESENCE_ON, PRESENCE_OFF = "benchp", "benchn"


class OpenKind(StreamKind):
    key_pattern = r"[a-z0-9-]{1,64}"
    publishers = Publishers.CLIENTS
    history = None
    fresh_user = False  # reads nothing of the user: no read of him either

    def can_read(self, user, key: str) -> Access:
        return Access.ALLOWED

    def can_publish(self, user, key: str) -> bool:
        return True


@register
class PresenceOn(OpenKind):
    name = PRESENCE_ON
    presence = True


@register
class PresenceOff(OpenKind):
    name = PRESENCE_OFF
    presence = False
