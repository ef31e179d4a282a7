"""Messages stored but not sent, for tests that deliver them by hand (or never).

`message_store` numbers and stores; these name the stream the way the tests
think of it. The returned `Published` carries the `event` and the `group` it
would be sent to.
"""

from realtime.publish import Published, message_store
from realtime.streams import room_stream, user_stream


def room_message_store(*, room, sender, data) -> Published:
    return message_store(stream=room_stream(room.slug), sender=sender, data=data)


def user_message_store(*, user, data, sender=None) -> Published:
    return message_store(stream=user_stream(user.pk), sender=sender, data=data)
