"""ASGI middleware: resolve the handshake's JWT into `scope["user"]`.

It runs BEFORE any consumer, labels the scope and never rejects by itself: the
consumer decides, so that refusals happen in one place (before accept).
"""

from channels.middleware import BaseMiddleware

from realtime.handshake import authenticate_scope


class JWTAuthMiddleware(BaseMiddleware):
    """Sets `scope["user"]` (a user or `AnonymousUser`) and `scope["auth"]`."""

    async def __call__(self, scope, receive, send):
        user, auth = await authenticate_scope(scope)
        # A copy (the caller's scope stays as it was), made once at its final
        # size: every layer's scope lives as long as the socket.
        return await self.inner(dict(scope, user=user, auth=auth), receive, send)
