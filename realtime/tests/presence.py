"""Several registries of live sockets sharing one store: processes, simulated.

In memory they share one `MemoryStore`; over Redis each has its own client
(its own connections, as a separate process would) and all share a key prefix
unique to the test, deleted afterwards.
"""

import asyncio
import time
import uuid

from realtime.presence.events import PresenceEvent
from realtime.presence.memory import MemoryStore
from realtime.presence.redis_store import RedisStore, close_bounded, redis_client
from realtime.presence.registry import SocketRegistry
from tests.services import require_redis

BACKENDS = ["memory", "redis"]
WAIT = 5.0  # seconds; every wait is bounded


class Recorder:
    """An `on_change` callback that keeps what it was given, and can be awaited."""

    def __init__(self) -> None:
        self.events: list[PresenceEvent] = []
        self._changed = asyncio.Condition()

    async def __call__(self, events: list[PresenceEvent]) -> None:
        async with self._changed:
            self.events += events
            self._changed.notify_all()

    async def wait_for(self, predicate, timeout: float = WAIT) -> float:
        """Wait until `predicate(events)` holds; the seconds it took."""
        started = time.monotonic()
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: predicate(self.events)), timeout
            )
        return time.monotonic() - started


class Cluster:
    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.prefix = f"authsocket-test-{uuid.uuid4().hex[:10]}:"
        self.url = require_redis() if backend == "redis" else ""
        self.memory = MemoryStore()
        self.registries: list[SocketRegistry] = []
        self._admin = redis_client(self.url) if self.url else None

    def store(self, url: str | None = None):
        if self.backend == "memory":
            return self.memory
        return RedisStore(redis_client(url or self.url), prefix=self.prefix)

    async def process(
        self, *, ttl: float = 30, start: bool = True, url: str | None = None
    ) -> SocketRegistry:
        """A new "process" with its own `Recorder` as `on_change`."""
        registry = SocketRegistry(self.store(url), ttl=ttl, on_change=Recorder())
        self.registries.append(registry)
        if start:
            await registry.start()
        return registry

    @property
    def admin(self):
        """A plain client on the test's Redis, for writing keys by hand."""
        return self._admin

    def key(self, *parts: object) -> str:
        """A registry key of this test, as the Redis store names it."""
        return self.prefix + ":".join(str(part) for part in parts)

    async def forget_everything(self) -> None:
        """What a Redis restart does to this test's keys."""
        keys = [key async for key in self._admin.scan_iter(f"{self.prefix}*")]
        if keys:
            await self._admin.delete(*keys)

    async def close(self) -> None:
        for registry in self.registries:
            await registry.stop(goodbye=False)
            if self.backend == "redis":
                await registry.store.close()
        if self._admin is not None:
            await self.forget_everything()
            await close_bounded(self._admin)
