"""The multiplexed endpoint, `/ws/` (docs/protocol.md §4): streams on the base consumer.

Authentication, limits, `ping`, `auth` renewal, expiry and revocation come from
`AuthenticatedConsumer`; this class adds the stream frames and events, whose
state and rules have one owner, `self.streams` (realtime.stream_frames).
"""

from realtime.base_consumer import AuthenticatedConsumer, FrameSpec
from realtime.frame_fields import FIELDS
from realtime.protocol import ClientFrame
from realtime.stream_frames import StreamSubscriptions


class StreamConsumer(AuthenticatedConsumer):
    """One authenticated socket: welcome, ping, auth renewal, streams, presence."""

    frames = {
        ClientFrame.SUBSCRIBE: FrameSpec("on_subscribe", FIELDS[ClientFrame.SUBSCRIBE]),
        ClientFrame.UNSUBSCRIBE: FrameSpec(
            "on_unsubscribe", FIELDS[ClientFrame.UNSUBSCRIBE]
        ),
        ClientFrame.PUBLISH: FrameSpec("on_publish", FIELDS[ClientFrame.PUBLISH]),
        ClientFrame.PRESENCE: FrameSpec("on_presence", FIELDS[ClientFrame.PRESENCE]),
    }

    __slots__ = ("_streams",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._streams: StreamSubscriptions | None = None

    @property
    def streams(self) -> StreamSubscriptions:
        """The owner of the socket's streams, made by the first stream frame or event.

        Most sockets sit idle: they never pay for one. Nothing reaches the
        handlers below before the socket is welcomed (one message at a time).
        """
        if self._streams is None:
            self._streams = StreamSubscriptions(socket=self, user=self.user)
        return self._streams

    async def on_subscribe(self, frame: dict) -> None:
        await self.streams.subscribe(frame)

    async def on_unsubscribe(self, frame: dict) -> None:
        await self.streams.unsubscribe(frame)

    async def on_publish(self, frame: dict) -> None:
        await self.streams.publish(frame)

    async def on_presence(self, frame: dict) -> None:
        await self.streams.presence_requested(frame)

    async def stream_message(self, event: dict) -> None:
        await self.streams.message_arrived(event)

    async def stream_revoke(self, event: dict) -> None:
        await self.streams.rights_changed(event)

    async def socket_closed(self, code: int) -> None:
        if self._streams is not None:  # presence comes through the process's relay
            await self._streams.presence.closed()
