"""ASGI middleware: resolve the handshake's JWT into `scope["user"]`.

It runs BEFORE any consumer, labels the scope and never rejects by itself: the
consumer decides, so that refusals happen in one place (before accept).
"""

from channels.middleware import BaseMiddleware

from realtime.handshake import authenticate_scope


class JWTAuthMiddleware(BaseMiddleware):
    """Sets `scope["user"]` (a user or `AnonymousUser`) and `scope["auth"]`."""

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        scope["user"], scope["auth"] = await authenticate_scope(scope)
        return await self.inner(scope, receive, send)
