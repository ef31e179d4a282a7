"""The registry read from sync code: the HTTP views and the admin.

Under daphne a sync view runs in a worker thread and `async_to_sync` takes the
call back to the server's event loop, where the registry (and its Redis
connections) live. Anything else gets a loop per call, which the Redis
asyncio client does not survive: serve the project with daphne (docs/deploy.md).

Every read starts the registry first (`registry_started`): a process that has
served no socket yet has no heartbeat and no dead-process scan, and would list
a killed process's users forever instead of for `AUTHSOCKET_PRESENCE_TTL`.
"""

from asgiref.sync import async_to_sync

from realtime.presence.broadcast import registry_started
from realtime.presence.events import ConnectedUser, Snapshot, UserConnections


def presence_read(*, stream: str, include: int | None = None) -> Snapshot:
    """Who is on the stream named in full, on every process; cut at the
    limit, user `include` (the caller) is still listed when he is on it."""
    return async_to_sync(_snapshot)(stream, include)


def connections_read(*, user_id: int) -> UserConnections:
    return async_to_sync(_user_connections)(user_id)


def connected_read() -> tuple[list[ConnectedUser], bool]:
    """Every connected user, and whether the answer is this process's alone
    (a Redis outage: `SocketRegistry.degraded`, read right after the rows)."""
    return async_to_sync(_connected_now)()


async def _snapshot(stream: str, include: int | None) -> Snapshot:
    return await (await registry_started()).snapshot(stream, include=include)


async def _user_connections(user_id: int) -> UserConnections:
    return await (await registry_started()).user_connections(user_id)


async def _connected_now() -> tuple[list[ConnectedUser], bool]:
    registry = await registry_started()
    rows = await registry.connected_now()
    return rows, registry.degraded
