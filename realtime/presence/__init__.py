"""Presence and the registry of live sockets on every process (docs/streams.md).

`registry_get()` is this process's `SocketRegistry`, over Redis when
`REDIS_URL` is set and in memory otherwise; `AUTHSOCKET_PRESENCE_TTL` is read
when it is first built.
"""

from django.conf import settings

from realtime.presence.memory import MemoryStore
from realtime.presence.redis_store import RedisStore, redis_client
from realtime.presence.registry import SocketRegistry

_registry: SocketRegistry | None = None


def registry_get() -> SocketRegistry:
    global _registry
    if _registry is None:
        store = (
            RedisStore(redis_client(settings.REDIS_URL))
            if settings.REDIS_URL
            else MemoryStore()
        )
        _registry = SocketRegistry(store, ttl=settings.AUTHSOCKET_PRESENCE_TTL)
    return _registry


async def registry_reset() -> None:
    """Stop and forget this process's registry (tests: each has its own loop)."""
    global _registry
    registry, _registry = _registry, None
    if registry is not None:
        await registry.stop()
        await registry.store.close()


async def registry_stop() -> None:
    """Say goodbye on shutdown: every entry removed now, leaves broadcast."""
    if _registry is not None:
        await _registry.stop()
