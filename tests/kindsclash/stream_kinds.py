from realtime.kinds import Access, StreamKind, register


@register
class ChatRooms(StreamKind):
    name = "room"
    key_pattern = r"[a-z]+"

    def can_read(self, user, key: str) -> Access:
        return Access.ALLOWED
