"""The PROTOCOL §4.2 wire shape (welcome, ping → pong) with no checks at all."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer


class EchoConsumer(AsyncJsonWebsocketConsumer):
    """Accepts everyone, greets, answers pings."""

    async def connect(self):
        await self.accept()
        await self.send_json(
            {"type": "welcome", "user": None, "session": None, "expires_at": None}
        )

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})
