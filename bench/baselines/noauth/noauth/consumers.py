"""The docs/protocol.md §4.2 wire shape with no checks at all.

`welcome`, `ping` → `pong`, and the subscribe/publish pair that the fan-out
scenario needs (one `group_send` per publish), so fan-out has a ceiling to
compare with too.
"""

import itertools
import time

from channels.generic.websocket import AsyncJsonWebsocketConsumer

# Message ids per stream, in this process only: enough for a benchmark.
_sequences: dict[str, itertools.count] = {}


def group_for(stream: str) -> str:
    """Channels group names allow no ':'."""
    return "s." + stream.replace(":", ".")


class EchoConsumer(AsyncJsonWebsocketConsumer):
    """Accepts everyone, greets, answers pings, relays publishes."""

    async def connect(self):
        await self.accept()
        await self.send_json(
            {"type": "welcome", "user": None, "session": None, "expires_at": None}
        )

    async def receive_json(self, content, **kwargs):
        kind, stream = content.get("type"), content.get("stream")
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "subscribe":
            await self.channel_layer.group_add(group_for(stream), self.channel_name)
            await self.send_json({"type": "subscribed", "stream": stream})
        elif kind == "publish":
            await self.publish(stream, content.get("data"))

    async def publish(self, stream: str, data) -> None:
        message_id = next(_sequences.setdefault(stream, itertools.count(1)))
        await self.channel_layer.group_send(
            group_for(stream),
            {
                "type": "stream.message",
                "stream": stream,
                "id": message_id,
                "data": data,
            },
        )
        await self.send_json({"type": "published", "stream": stream, "id": message_id})

    async def stream_message(self, event):
        await self.send_json(
            {
                "type": "message",
                "stream": event["stream"],
                "id": event["id"],
                "sender": None,
                "data": event["data"],
                "ts_ms": int(time.time() * 1000),
            }
        )
