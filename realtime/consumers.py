"""The multiplexed endpoint, `/ws/` (docs/protocol.md §4): streams on the base consumer.

Authentication, limits, `ping`, `auth` renewal, expiry and revocation come from
`AuthenticatedConsumer`; this class adds the stream frames and events, whose
rules live in realtime.stream_frames.
"""

from realtime import stream_frames
from realtime.base_consumer import AuthenticatedConsumer, FrameSpec
from realtime.frame_fields import FIELDS
from realtime.protocol import ClientFrame


class StreamConsumer(AuthenticatedConsumer):
    """One authenticated socket: welcome, ping, auth renewal, streams."""

    frames = {
        ClientFrame.SUBSCRIBE: FrameSpec("on_subscribe", FIELDS[ClientFrame.SUBSCRIBE]),
        ClientFrame.UNSUBSCRIBE: FrameSpec(
            "on_unsubscribe", FIELDS[ClientFrame.UNSUBSCRIBE]
        ),
        ClientFrame.PUBLISH: FrameSpec("on_publish", FIELDS[ClientFrame.PUBLISH]),
    }

    async def on_subscribe(self, frame: dict) -> None:
        await stream_frames.on_subscribe(self, frame)

    async def on_unsubscribe(self, frame: dict) -> None:
        await stream_frames.on_unsubscribe(self, frame)

    async def on_publish(self, frame: dict) -> None:
        await stream_frames.on_publish(self, frame)

    async def stream_message(self, event: dict) -> None:
        await stream_frames.on_stream_message(self, event)

    async def stream_revoke(self, event: dict) -> None:
        await stream_frames.on_stream_revoke(self, event)
