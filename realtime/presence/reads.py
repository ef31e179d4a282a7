"""The registry read from sync code: the HTTP views and the admin.

Under daphne a sync view runs in a worker thread and `async_to_sync` takes the
call back to the server's event loop, where the registry (and its Redis
connections) live. Anything else gets a loop per call, which the Redis
asyncio client does not survive: serve the project with daphne (docs/deploy.md).
"""

from asgiref.sync import async_to_sync

from realtime.presence import registry_get
from realtime.presence.events import ConnectedUser, Snapshot, UserConnections


def presence_read(*, stream: str, include: int | None = None) -> Snapshot:
    """Who is on the stream named in full, on every process; cut at the
    limit, user `include` (the caller) is still listed when he is on it."""
    return async_to_sync(registry_get().snapshot)(stream, include=include)


def connections_read(*, user_id: int) -> UserConnections:
    return async_to_sync(registry_get().user_connections)(user_id)


def connected_read() -> list[ConnectedUser]:
    return async_to_sync(registry_get().connected_now)()
