"""Presence scripts go to Redis in pipelines: one in flight, the next gathering.

Why: flat out, every subscribe with presence costs a join and every
unsubscribe a leave, each its own round trip. Through the client, redis-py
spends about 100 µs of the event loop's time on one call (the pool's checks,
a task for each timed read and write, packing, parsing); on a connection of
the batcher's own with one timeout per exchange, about 60 µs, and a call
that shares a pipeline with others costs a fraction of that.

How: a call made while nothing is in flight goes out on the next turn of the
loop, alone. Calls made while a pipeline is in flight wait for it to come
back and go out together in the next one, so the busier the server, the
fuller the pipelines (group commit), and one connection serves them all.

Why this is safe:
- The calls of one pipeline were all in flight at once, so any order among
  them is one their callers could have seen. A caller's own calls keep their
  order: it awaits each before it makes the next.
- Each script is idempotent per (process, socket, stream), so sending a
  pipeline again after its connection failed (once, as the client does for a
  single call) counts nothing twice.
- Pipelines are sent by a task of their own: a caller cancelled while it waits
  (its socket closed) leaves the others' calls untouched.
- A failure reaches every caller of the pipeline as the error it would have
  seen alone (the client's errors, or TimeoutError), so presence degrades
  exactly as before.
"""

import asyncio
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Connection, Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as LostConnection
from redis.exceptions import NoScriptError, ResponseError


@dataclass(slots=True)
class _Call:
    script: AsyncScript
    keys: list[str]
    args: list[Any]
    answer: asyncio.Future

    def settle(self, result: Any) -> None:
        """Hand the caller its reply, or its error (unless it stopped waiting)."""
        if self.answer.done():
            return
        if isinstance(result, BaseException):
            self.answer.set_exception(result)
        else:
            self.answer.set_result(result)


class ScriptBatcher:
    """`await batcher.run(script, keys, args)` answers what
    `await script(keys=keys, args=args)` would, sent in a pipeline."""

    def __init__(self, client: Redis, *, timeout: float) -> None:
        self.redis = client
        self.timeout = timeout  # seconds for one pipeline, sent and answered
        self._connection: Connection | None = None
        self._gathering: list[_Call] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sender: asyncio.Task | None = None

    async def run(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # what a stopped loop left is unusable
            self._gathering, self._loop, self._sender = [], loop, None
            self._connection = None
        call = _Call(script, keys, args, loop.create_future())
        self._gathering.append(call)
        if self._sender is None:
            self._sender = loop.create_task(self._send_all())
        return await call.answer

    async def close(self) -> None:
        """Drop the batcher's own connection (the client's pool does not hold it)."""
        await self._drop()

    async def _send_all(self) -> None:
        """Send what was gathered, then what was called meanwhile, until none is left."""
        try:
            while self._gathering:
                batch, self._gathering = self._gathering, []
                await self._send(batch)
        except asyncio.CancelledError:  # the loop is closing
            for call in self._gathering:
                call.answer.cancel()
            self._gathering = []
            raise
        finally:
            self._sender = None

    async def _send(self, batch: list[_Call]) -> None:
        try:
            results = await self._replies(batch)
        except asyncio.CancelledError:  # the loop is closing
            for call in batch:
                call.answer.cancel()
            raise
        except Exception as exc:  # the connection failed: every caller hears it
            results = [exc] * len(batch)
        for call, result in zip(batch, results, strict=True):
            call.settle(result)

    async def _replies(self, batch: list[_Call]) -> list[Any]:
        commands = [
            ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
            for call in batch
        ]
        try:
            replies = await self._exchange(commands)
        except LostConnection:  # a stale connection (Redis restarted): once more
            replies = await self._exchange(commands)
        # Redis forgot the scripts (restarted, or SCRIPT FLUSH; the first use
        # of each too): load them and send those calls again.
        missing = [
            i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)
        ]
        if missing:
            for source in {batch[i].script.script for i in missing}:
                await self.redis.script_load(source)
            again = await self._exchange([commands[i] for i in missing])
            for index, reply in zip(missing, again, strict=True):
                replies[index] = reply
        return replies

    async def _exchange(self, commands: list[tuple]) -> list[Any]:
        """Send the commands and read their replies, on the batcher's connection.

        Any failure drops the connection: what it would read next is unknown.
        """
        connection = self._connection or self._connect()
        try:
            async with asyncio.timeout(self.timeout):
                await connection.send_packed_command(
                    connection.pack_commands(commands), check_health=False
                )
                return [await _read(connection) for _ in commands]
        except BaseException:
            await self._drop()
            raise

    def _connect(self) -> Connection:
        """The batcher's own connection, outside the client's pool.

        One pipeline is in flight at a time, so one connection serves them
        all, and nothing pays the pool's checks on every call. It has no
        timeout per read or write: each exchange has one for the whole.
        """
        pool = self.redis.connection_pool
        self._connection = pool.connection_class(
            **{**pool.connection_kwargs, "socket_timeout": None}
        )
        return self._connection

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect(nowait=True)


async def _read(connection: Connection) -> Any:
    """One reply, or the error Redis answered with (the others are still read)."""
    try:
        return await connection.read_response()
    except ResponseError as exc:
        return exc
