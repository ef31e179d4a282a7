"""One channel's waiting messages: the queue behind every socket's channel.

The channel layers (realtime/channels_overrides.py, in memory, and
realtime/channels_redis_overrides.py, this process's side of Redis) keep one
per channel while its consumer waits for the next message, that is for every
idle socket. `asyncio.Queue` costs about 3 KiB each (four deques: its items,
getters, putters and the `join()` event's waiters); the layers only ever
`put_nowait` and `get`, so this keeps the items and the receivers waiting,
each allocated when first needed, in a few dozen bytes while empty.
Same semantics as `asyncio.Queue` for those calls: FIFO, `QueueFull` over
`capacity` (0: unbounded), one waiting receiver woken per message.
"""

import asyncio
from collections import deque


class Mailbox:
    __slots__ = ("capacity", "_items", "_waiters")

    def __init__(self, capacity: int = 0) -> None:
        self.capacity = capacity
        self._items: deque | None = None  # made by the first put
        self._waiters: list[asyncio.Future] | None = None  # receivers, oldest first

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.capacity <= self.qsize()

    def peek(self):
        """The oldest item, left in place; `asyncio.QueueEmpty` if there is none."""
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items[0]

    def put_nowait(self, item) -> None:
        if self.full():
            raise asyncio.QueueFull
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._wake_one()

    def get_nowait(self):
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        if not self._items:
            self._items = None  # an idle channel keeps no deque
        return item

    async def get(self):
        """The oldest item, waiting for one if need be (cancellable, as a Queue's)."""
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                waiter.cancel()
                self._forget(waiter)
                # Woken, then cancelled: the item it was woken for goes to the next.
                if self._items and not waiter.cancelled():
                    self._wake_one()
                raise
            self._forget(waiter)
        return self.get_nowait()

    @property
    def waiting(self) -> bool:
        """Whether a receiver waits on this mailbox."""
        return bool(self._waiters)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                break
        if not self._waiters:
            self._waiters = None

    def _forget(self, waiter: asyncio.Future) -> None:
        if self._waiters and waiter in self._waiters:
            self._waiters.remove(waiter)
        if not self._waiters:
            self._waiters = None
