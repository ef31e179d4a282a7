"""The docs/protocol.md §4.2 wire shape behind the peer's token middleware."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer


class EchoConsumer(AsyncJsonWebsocketConsumer):
    """Refuses anonymous handshakes; greets the user; answers pings."""

    async def connect(self):
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close()
            return
        await self.accept()
        await self.send_json(
            {
                "type": "welcome",
                "user": {"id": user.pk, "username": user.get_username()},
                "session": None,
                "expires_at": None,
            }
        )

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})
