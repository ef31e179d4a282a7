from channels.db import database_sync_to_async

from examples.shareddoc.selectors import document_readable
from realtime.base_consumer import AuthenticatedConsumer, FrameSpec
from realtime.frame_fields import NUMBER


class CursorConsumer(AuthenticatedConsumer):
    """Live cursors on a document: each collaborator's moves reach the others."""

    frames = {"cursor": FrameSpec("on_cursor", {"x": NUMBER, "y": NUMBER})}

    async def socket_allowed(self) -> bool:
        self.document_id = int(self.scope["url_route"]["kwargs"]["pk"])
        return await database_sync_to_async(document_readable)(
            document_id=self.document_id, user=self.user
        )

    async def socket_authenticated(self) -> None:
        self.group = f"shareddoc.cursors.{self.document_id}"
        await self.group_join(self.group)

    async def on_cursor(self, frame: dict) -> None:
        await self.channel_layer.group_send(
            self.group,
            {
                "type": "cursor.moved",
                "sender": self.channel_name,
                "user": {"id": self.user_id, "username": self.user.get_username()},
                "x": frame["x"],
                "y": frame["y"],
            },
        )

    async def cursor_moved(self, event: dict) -> None:
        if event["sender"] != self.channel_name:  # the mover knows where he is
            await self.send_frame(
                "cursor", user=event["user"], x=event["x"], y=event["y"]
            )
