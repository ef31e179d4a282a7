"""authsocket's Python client: the user side, reconnecting sockets, the server API.

async with ApiClient("http://127.0.0.1:8000") as api:
    await api.login("alice", "authsocket-demo")
    async with api.socket() as socket:
        await socket.subscribe("room:lobby", since=0)
        async for message in socket.messages():
            print(message.stream, message.id, message.data)
"""

from authsocket_client.api import ApiClient
from authsocket_client.errors import (
    ApiError,
    AuthSocketError,
    ConnectionStopped,
    CredentialsRejected,
    Disconnected,
    FrameError,
    NetworkError,
    NotJson,
    NotLive,
    TokenFileUnreadable,
    TokenRotated,
)
from authsocket_client.presence import PresenceEvent, PresenceView
from authsocket_client.protocol import CloseCode
from authsocket_client.server import ServerClient
from authsocket_client.socket import AuthSocket, Message, State, Stats, Unsubscribed
from authsocket_client.tokens import (
    FileTokenStore,
    MemoryTokenStore,
    Tokens,
    TokenStore,
    jwt_parts,
)

__all__ = [
    "ApiClient",
    "ApiError",
    "AuthSocket",
    "AuthSocketError",
    "CloseCode",
    "ConnectionStopped",
    "CredentialsRejected",
    "Disconnected",
    "FileTokenStore",
    "FrameError",
    "MemoryTokenStore",
    "Message",
    "NetworkError",
    "NotJson",
    "NotLive",
    "PresenceEvent",
    "PresenceView",
    "ServerClient",
    "State",
    "Stats",
    "TokenFileUnreadable",
    "TokenRotated",
    "TokenStore",
    "Tokens",
    "Unsubscribed",
    "jwt_parts",
]
