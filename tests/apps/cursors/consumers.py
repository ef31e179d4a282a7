from realtime.base_consumer import AuthenticatedConsumer, FrameSpec
from realtime.frame_fields import NUMBER


class CursorConsumer(AuthenticatedConsumer):
    """Live cursors on a document: every move reaches everyone on it."""

    frames = {"cursor": FrameSpec("on_cursor", {"x": NUMBER, "y": NUMBER})}

    async def socket_authenticated(self) -> None:
        self.group = f"cursors.{self.scope['url_route']['kwargs']['doc']}"
        await self.group_join(self.group)

    async def on_cursor(self, frame: dict) -> None:
        await self.channel_layer.group_send(
            self.group,
            {
                "type": "cursor.moved",
                "user": self.user_id,
                "x": frame["x"],
                "y": frame["y"],
            },
        )

    async def cursor_moved(self, event: dict) -> None:
        await self.send_frame("cursor", user=event["user"], x=event["x"], y=event["y"])

    async def socket_closed(self, code: int) -> None:
        await self.channel_layer.group_send(
            self.group, {"type": "cursor.left", "user": self.user_id}
        )

    async def cursor_left(self, event: dict) -> None:
        await self.send_frame("cursor.left", user=event["user"])
