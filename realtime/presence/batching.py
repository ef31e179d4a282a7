"""Presence scripts go to Redis pipelined, on one connection of their own.

Why: flat out, every subscribe with presence costs a join and every
unsubscribe a leave, each its own round trip. Through redis-py's pool, one
call costs the event loop about 100 µs (the pool's checks, a timeout for
every read and write, a task per pipeline), and 13 µs when twenty share a
pipeline; most of that is not Redis' work but the client's. Here a call
costs about 50 µs alone and 7 µs when twenty are in flight (a micro-benchmark
on the bench machine), and the bench's churn without snapshots went from
0.87-0.88x to 0.90-0.94x of presence off (`bench/results/2026-12-05-pipelined-*.md`,
`…/2026-12-05-presence-pipelined*.md`).

How: every call made during one turn of the event loop goes out in one
write, without waiting for earlier replies (Redis answers one connection's
commands in order). One reader task reads the replies, in order, and hands
each to the call that waits for it. There is no timeout per call: a
watchdog checks, every `timeout` seconds while calls wait, that a reply came
since its last look; if none did, Redis is taken for unreachable.

Why this is safe:
- Redis runs one connection's commands in the order they were written: the
  order in which the calls were made. A caller's own calls keep their order,
  as it awaits each before it makes the next.
- Each script is idempotent per (process, socket, stream), so a call sent
  again after its connection was lost (once, as redis-py does for a single
  call) counts nothing twice.
- A caller that stops waiting (its socket closed) leaves its reply to be read
  and dropped: the others' replies stay in step.
- A failure reaches every waiting call as an error the registry takes for an
  outage (`redis.exceptions.ConnectionError`, `TimeoutError`), so presence
  degrades exactly as before.

The connection is made by redis-py (authentication, TLS, database from
`REDIS_URL`); only its writes and reads are done here. Commands are packed
by hiredis (in C, arguments as UTF-8, redis-py's default): redis-py's
asyncio connection packs in Python, about 15 µs for a script call's dozen
arguments, twice per subscribe and unsubscribe.
"""

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from functools import partial
from typing import Any

from hiredis import pack_command
from redis.asyncio import Connection, Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as LostConnection
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as NoAnswer


class ScriptPipeline:
    """`await pipeline.run(script, keys, args)` answers what
    `await script(keys=keys, args=args)` would, pipelined with other calls."""

    def __init__(self, client: Redis, *, timeout: float) -> None:
        self.redis = client
        self.timeout = timeout  # seconds without any reply while calls wait
        self._link: _Link | None = None
        self._opening: asyncio.Future | None = None
        self._loading: dict[str, asyncio.Future] = {}  # sha → its SCRIPT LOAD

    async def run(
        self, script: AsyncScript, keys: Sequence[str], args: list[Any]
    ) -> Any:
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        loaded = resent = False
        while True:
            link = await self._connected()
            try:
                return await link.call(command)
            except NoScriptError:  # Redis restarted, or SCRIPT FLUSH: load it
                if loaded:
                    raise
                loaded = True
                await self._load(script)
            except LostConnection:  # a stale connection: once more, on a new one
                if resent:
                    raise
                resent = True

    async def _load(self, script: AsyncScript) -> None:
        """Load `script` once for every call that found it missing meanwhile
        (after a restart, the whole first write does)."""
        loop = asyncio.get_running_loop()
        loading = self._loading.get(script.sha)
        if loading is None or loading.get_loop() is not loop:
            loading = loop.create_task(self.redis.script_load(script.script))
            self._loading[script.sha] = loading
            loading.add_done_callback(partial(self._loaded, script.sha))
        await asyncio.shield(loading)

    def _loaded(self, sha: str, loading: asyncio.Task) -> None:
        if self._loading.get(sha) is loading:
            del self._loading[sha]
        if not loading.cancelled():
            loading.exception()  # retrieved: its callers may all have gone

    async def close(self) -> None:
        """Close the connection (the client's pool does not hold it)."""
        loop = asyncio.get_running_loop()
        opening, self._opening = self._opening, None
        if opening is not None and opening.get_loop() is loop:
            opening.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await opening
        link, self._link = self._link, None
        if link is not None and link.loop is loop:
            await link.close()

    async def _connected(self) -> "_Link":
        """The open link on this loop, opened once for every caller that needs it."""
        loop = asyncio.get_running_loop()
        link = self._link
        if link is not None and link.loop is loop and link.open:
            return link
        opening = self._opening
        if opening is None or opening.get_loop() is not loop:
            opening = self._opening = loop.create_task(self._open())
            opening.add_done_callback(self._opened)
        return await asyncio.shield(opening)

    async def _open(self) -> "_Link":
        pool = self.redis.connection_pool
        # No socket timeout: the reader waits for replies as long as there
        # are none to wait for; the watchdog bounds the wait of a call.
        options = {**pool.connection_kwargs, "socket_timeout": None}
        connection: Connection = pool.connection_class(**options)
        await connection.connect()
        return _Link(connection, timeout=self.timeout)

    def _opened(self, opening: asyncio.Task) -> None:
        if self._opening is opening:
            self._opening = None
        if not opening.cancelled() and opening.exception() is None:  # retrieved
            self._link = opening.result()


class _Link:
    """One connection: calls written once per turn of the loop, replies read in order."""

    def __init__(self, connection: Connection, *, timeout: float) -> None:
        self.connection = connection
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.open = True
        self._waiting: deque[asyncio.Future] = deque()  # in the order written
        self._outgoing: list[bytes] = []
        self._answered = 0  # replies read so far, for the watchdog
        self._watchdog: asyncio.TimerHandle | None = None
        self._reader = self.loop.create_task(self._read_forever())

    def call(self, command: tuple) -> asyncio.Future:
        """The reply to `command` (a future), written with the others of this turn."""
        if not self.open:
            raise LostConnection("the presence pipeline's connection is closed")
        # Packed first: a call whose arguments cannot be encoded fails alone,
        # before it holds a place among the replies awaited in order.
        packed = pack_command(command)
        answer = self.loop.create_future()
        self._waiting.append(answer)
        if not self._outgoing:
            self.loop.call_soon(self._write)
        self._outgoing.append(packed)
        if self._watchdog is None:
            self._watch(self._answered)
        return answer

    async def close(self) -> None:
        self._fail(LostConnection("the presence pipeline was closed"))
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    def _write(self) -> None:
        data, self._outgoing = b"".join(self._outgoing), []
        if self.open:
            # A plain write to the connection's stream (redis-py's `_writer`
            # in every version requirements.txt allows; the tests of this
            # module fail without it): `send_packed_command` would await
            # drain() and cost a task per write. Calls are small, and the
            # reader notices a connection that failed.
            self.connection._writer.write(data)

    async def _read_forever(self) -> None:
        try:
            while True:
                try:
                    reply = await self.connection.read_response()
                except ResponseError as error:  # the script's error: this call's
                    reply = error
                if not self._waiting:
                    raise LostConnection("Redis answered a command never sent")
                self._answered += 1
                _settle(self._waiting.popleft(), reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # lost, or out of step: every waiting call hears it
            self._fail(exc if isinstance(exc, LostConnection) else LostConnection(exc))
        finally:
            await self.connection.disconnect(nowait=True)

    def _watch(self, answered: int) -> None:
        self._watchdog = self.loop.call_later(self.timeout, self._check, answered)

    def _check(self, answered_before: int) -> None:
        """Calls wait: a reply must have come since the last look, or Redis is gone."""
        self._watchdog = None
        if not self._waiting or not self.open:
            return
        if self._answered == answered_before:
            self._fail(NoAnswer(f"Redis did not answer within {self.timeout} s"))
            return
        self._watch(self._answered)

    def _fail(self, error: Exception) -> None:
        """Close the link; every call still waiting gets `error`."""
        if not self.open:
            return
        self.open = False
        if self._watchdog is not None:
            self._watchdog.cancel()
        while self._waiting:
            answer = self._waiting.popleft()
            if not answer.done():
                answer.set_exception(error)
        if self._reader is not asyncio.current_task():
            self._reader.cancel()


def _settle(answer: asyncio.Future, reply: Any) -> None:
    """Hand the caller its reply, or its error (unless it stopped waiting)."""
    if answer.done():
        return
    if isinstance(reply, BaseException):
        answer.set_exception(reply)
    else:
        answer.set_result(reply)
