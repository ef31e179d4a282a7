"""Presence scripts go to Redis in pipelines: one in flight, the next gathering.

Why: flat out, every subscribe with presence costs a join and every
unsubscribe a leave, each its own round trip, and redis-py spends about
60-100 µs of the event loop's time on one call (the pool's checks, timed
reads and writes, packing, parsing). Calls that share a pipeline share most
of that: twenty cost about 12 µs each.

How: a call made while nothing is in flight goes out on the next turn of the
loop, alone. Calls made while a pipeline is in flight wait for it to come
back and go out together in the next one, so the busier the server, the
fuller the pipelines (group commit).

Why this is safe:
- The calls of one pipeline were all in flight at once, so any order among
  them is one their callers could have seen. A caller's own calls keep their
  order: it awaits each before it makes the next.
- Each script is idempotent per (process, socket, stream), so the client's
  one retry of a pipeline whose connection failed counts nothing twice, as
  for a single call.
- Pipelines are sent by a task of their own: a caller cancelled while it waits
  (its socket closed) leaves the others' calls untouched.
- A failure reaches every caller of the pipeline as the error it would have
  seen alone, so presence degrades exactly as before.

A connection of the batcher's own, with one timeout per pipeline instead of
the pool's checks and a timeout per read and write, was tried: each call
cost less, but pipelines came back sooner and held fewer calls, and the
server's CPU per subscribe did not move (bench/results/2026-12-05-ab-*.md).
"""

import asyncio
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError


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

    def __init__(self, client: Redis) -> None:
        self.redis = client
        self._gathering: list[_Call] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sender: asyncio.Task | None = None

    async def run(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # what a stopped loop left is unusable
            self._gathering, self._loop, self._sender = [], loop, None
        call = _Call(script, keys, args, loop.create_future())
        self._gathering.append(call)
        if self._sender is None:
            self._sender = loop.create_task(self._send_all())
        return await call.answer

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
        """Each command's reply, or the error Redis answered it with."""
        pipe = self.redis.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return await pipe.execute(raise_on_error=False)
