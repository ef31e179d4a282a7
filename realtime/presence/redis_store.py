"""The store shared by several processes (`REDIS_URL`), with its Lua scripts.

Keys, under one prefix (`authsocket:` by default):

| key | type | holds |
|---|---|---|
| `procs` | set | process ids that registered |
| `proc:<pid>` | string with a TTL | the heartbeat; gone = the process died (or Redis restarted) |
| `reap:<pid>` | string with a TTL | who cleans up after a dead process (SET NX) |
| `sock:<pid>` | hash | socket id → `user id|sid|username as JSON`, the process's sockets |
| `subs:<pid>` | hash | `socket id|stream` → user id, the process's subscriptions |
| `usess:<uid>` | hash | sid → sockets of that session, on every process |
| `pres:<stream>` | hash | user id → sockets on the stream, on every process |
| `puser:<stream>` | hash | user id → username as JSON text (snapshots need no database) |
| `pord:<stream>` | sorted set | each user's part of the snapshot frame, scored by id |
| `pver:<stream>` | string | the stream's latest change version |
| `pjoin:<stream>` | hash | user id → the version of the join that began his presence |

The join and leave scripts update a process's record and the shared counts in
one step, so exactly one caller sees a count go 0 → 1 or 1 → 0, and the
change is numbered by the same script. They are idempotent per
(process, socket, stream), so a leave replayed by two cleaners counts once.
The dead-process scan names other processes' keys from inside a script: this
store targets a single Redis (or a primary with replicas), not Redis Cluster.
"""

import asyncio
import contextlib
import json
from functools import lru_cache

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from realtime.presence.batching import ScriptPipeline
from realtime.presence.events import (
    ConnectedUser,
    ProcessEntries,
    Snapshot,
    SocketEntry,
    UserConnections,
    name_encode,
)
from realtime.presence.store import Left, connected_build, user_connections_build

DEFAULT_PREFIX = "authsocket:"
SEPARATOR = "|"  # socket ids (channel names) never contain it
VERSION_TTL = (
    86_400  # seconds an idle stream's version is kept; then the clock takes over
)
TIMEOUT = 2.0  # seconds: an outage must answer fast, not hang a frame

# Versions are microseconds of Redis' clock, made strictly increasing per
# stream: they keep increasing when the key expired or Redis restarted.
_BUMP = """
local function bump(key, ttl)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local v = tonumber(redis.call('GET', key) or '0') + 1
  if v < now then v = now end
  redis.call('SET', key, string.format('%.0f', v), 'EX', ttl)
  return v
end
"""

# Each user on a stream is listed in `pord` as his part of the snapshot frame,
# the very text `user_part` builds (his name is kept as JSON, id and count
# are digits), scored by id: a snapshot is read as it is sent, in order. A
# part is replaced whenever the user's count or name changes.
_PLACE = """
local function part(uid, name, n)
  return '{"id":' .. uid .. ',"username":' .. name .. ',"connections":' .. n .. '}'
end
local function place(uid, old_name, old_n, name, n)
  if old_n > 0 then redis.call('ZREM', KEYS[6], part(uid, old_name, old_n)) end
  if n > 0 then redis.call('ZADD', KEYS[6], uid, part(uid, name, n)) end
end
"""

# KEYS: subs:<pid>, pres:<S>, puser:<S>, pver:<S>, pjoin:<S>, pord:<S>;
# ARGV: field, user id, username as JSON, ttl
_JOIN = """
local function join()
  if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return false end
  local old_name = redis.call('HGET', KEYS[3], ARGV[2]) or '""'
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
  local n = redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
  place(ARGV[2], old_name, n - 1, ARGV[3], n)
  if n > 1 then return false end
  local v = bump(KEYS[4], ARGV[4])
  redis.call('HSET', KEYS[5], ARGV[2], string.format('%.0f', v))
  return v
end
"""
# A snapshot: the version, the number of users, how many are listed, and the
# first `limit` parts joined by commas. One string: the client parses one
# reply, not hundreds, and the frame takes it as it is. Cut at the limit, it
# lists user `uid` (when given and on the stream) in its last place: the
# snapshot answering a subscribe includes the caller (docs/protocol.md §4.4);
# his id is above every one listed, so the order by id holds.
_READ = """
local function read(limit, uid)
  local n = tonumber(limit)
  local parts = redis.call('ZRANGE', KEYS[6], 0, n - 1)
  local count = #parts
  if count >= n then
    count = redis.call('ZCARD', KEYS[6])
    if uid and count > n then
      local own = redis.call('ZRANGEBYSCORE', KEYS[6], uid, uid)
      if own[1] and redis.call('ZRANK', KEYS[6], own[1]) >= n then
        parts[n] = own[1]
      end
    end
  end
  return {redis.call('GET', KEYS[4]) or false, count, #parts, table.concat(parts, ',')}
end
"""
JOIN = _BUMP + _PLACE + _JOIN + "return join()"
# The join and the snapshot after it, in one round trip (every subscribe with
# presence does both); KEYS as JOIN's, ARGV as JOIN's and then the limit.
JOIN_READ = (
    _BUMP + _PLACE + _JOIN + _READ + "return {join(), unpack(read(ARGV[5], ARGV[2]))}"
)
# KEYS as JOIN's (the first unused); ARGV: the limit, then the user to list
# whatever the cut, or nothing
READ = _READ + "return read(ARGV[1], ARGV[2])"

# KEYS as JOIN's; ARGV: field, ttl
LEAVE = (
    _BUMP
    + _PLACE
    + """
local uid = redis.call('HGET', KEYS[1], ARGV[1])
if not uid then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
local n = redis.call('HINCRBY', KEYS[2], uid, -1)
local name = redis.call('HGET', KEYS[3], uid) or '""'
place(uid, name, n + 1, name, n)
if n > 0 then return false end
redis.call('HDEL', KEYS[2], uid)
redis.call('HDEL', KEYS[3], uid)
local joined = redis.call('HGET', KEYS[5], uid) or ''
redis.call('HDEL', KEYS[5], uid)
return {bump(KEYS[4], ARGV[2]), uid, name, joined}
"""
)

# KEYS: sock:<pid>, usess:<uid>; ARGV: socket id, entry, sid
SOCKET_ADD = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
end
"""

# KEYS: sock:<pid>, usess:<uid>; ARGV: socket id, sid
SOCKET_REMOVE = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then
    redis.call('HDEL', KEYS[2], ARGV[2])
  end
end
"""

# KEYS: sock:<pid>, subs:<pid>, proc:<pid>, procs; ARGV: pid. The heartbeat
# goes whatever is left: a process that was only stalled registers again.
REAPED = """
redis.call('DEL', KEYS[3])
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('SREM', KEYS[4], ARGV[1])
return 1
"""

# KEYS: procs; ARGV: own pid, key prefix
DEAD = """
local dead = {}
for _, pid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if pid ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. 'proc:' .. pid) == 0 then
    table.insert(dead, pid)
  end
end
return dead
"""


async def close_bounded(client: Redis) -> None:
    """`client.aclose()`, given up after TIMEOUT (the sockets are dropped anyway)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(TIMEOUT):
            await client.aclose()


def redis_client(url: str, **options) -> Redis:
    """A client that fails fast in an outage (one retry, for a stale connection)."""
    return Redis.from_url(
        url,
        **{
            "decode_responses": True,
            "socket_timeout": TIMEOUT,
            "socket_connect_timeout": TIMEOUT,
            "retry": Retry(NoBackoff(), 1),
            **options,
        },
    )


class RedisStore:
    def __init__(self, client: Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.redis = client
        self.prefix = prefix
        self._join = client.register_script(JOIN)
        self._join_read = client.register_script(JOIN_READ)
        self._read = client.register_script(READ)
        self._leave = client.register_script(LEAVE)
        self._socket_add = client.register_script(SOCKET_ADD)
        self._socket_remove = client.register_script(SOCKET_REMOVE)
        self._dead = client.register_script(DEAD)
        self._reaped = client.register_script(REAPED)
        self._pipeline = ScriptPipeline(client, timeout=TIMEOUT)

    def key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(part) for part in parts)

    async def process_register(self, pid: str, *, ttl: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key("proc", pid), "1", px=_ms(ttl))
            pipe.sadd(self.key("procs"), pid)
            await pipe.execute()

    async def process_beat(self, pid: str, *, ttl: float) -> bool:
        return bool(await self.redis.pexpire(self.key("proc", pid), _ms(ttl)))

    async def processes_dead(self, pid: str) -> list[str]:
        return await self._dead(keys=[self.key("procs")], args=[pid, self.prefix])

    async def process_claim(self, dead: str, *, by: str, ttl: float) -> bool:
        return bool(
            await self.redis.set(self.key("reap", dead), by, nx=True, px=_ms(ttl))
        )

    async def process_entries(self, pid: str) -> ProcessEntries:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.key("sock", pid))
            pipe.hgetall(self.key("subs", pid))
            sockets, subs = await pipe.execute()
        entries = ProcessEntries()
        for socket_id, value in sockets.items():
            entries.sockets[socket_id] = _entry_parse(value)
        for field, user_id in subs.items():
            socket_id, stream = field.split(SEPARATOR, 1)
            entries.streams[socket_id, stream] = int(user_id)
        return entries

    async def process_forget(self, pid: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(
                self.key("sock", pid), self.key("subs", pid), self.key("proc", pid)
            )
            pipe.srem(self.key("procs"), pid)
            await pipe.execute()

    async def process_reaped(self, pid: str) -> bool:
        keys = [self.key(kind, pid) for kind in ("sock", "subs", "proc")]
        return bool(await self._reaped(keys=[*keys, self.key("procs")], args=[pid]))

    async def socket_add(self, pid: str, socket_id: str, entry: SocketEntry) -> None:
        name = name_encode(entry.username)  # JSON: any name is UTF-8 this way
        value = SEPARATOR.join([str(entry.user_id), entry.sid, name])
        await self._pipeline.run(
            self._socket_add,
            [self.key("sock", pid), self.key("usess", entry.user_id)],
            [socket_id, value, entry.sid],
        )

    async def socket_remove(self, pid: str, socket_id: str, entry: SocketEntry) -> None:
        await self._pipeline.run(
            self._socket_remove,
            [self.key("sock", pid), self.key("usess", entry.user_id)],
            [socket_id, entry.sid],
        )

    async def stream_join(
        self, pid: str, socket_id: str, stream: str, *, user_id: int, username: str
    ) -> int | None:
        version = await self._pipeline.run(
            self._join,
            self._stream_keys(pid, stream),
            [
                socket_id + SEPARATOR + stream,
                user_id,
                name_encode(username),
                VERSION_TTL,
            ],
        )
        return int(version) if version is not None else None

    async def stream_join_read(
        self,
        pid: str,
        socket_id: str,
        stream: str,
        *,
        user_id: int,
        username: str,
        limit: int,
    ) -> tuple[int | None, Snapshot]:
        version, *read = await self._pipeline.run(
            self._join_read,
            self._stream_keys(pid, stream),
            [
                socket_id + SEPARATOR + stream,
                user_id,
                name_encode(username),
                VERSION_TTL,
                limit,
            ],
        )
        first = int(version) if version is not None else None  # the user's join
        return first, _snapshot_parse(*read)

    async def stream_leave(self, pid: str, socket_id: str, stream: str) -> Left | None:
        left = await self._pipeline.run(
            self._leave,
            self._stream_keys(pid, stream),
            [socket_id + SEPARATOR + stream, VERSION_TTL],
        )
        if not left:
            return None
        version, user_id, name_json, joined = left
        username = json.loads(name_json)
        return int(version), int(user_id), username, int(joined) if joined else None

    async def snapshot(
        self, stream: str, *, limit: int, include: int | None = None
    ) -> Snapshot:
        arguments = [limit] if include is None else [limit, include]
        read = await self._pipeline.run(
            self._read, self._stream_keys("-", stream), arguments
        )
        return _snapshot_parse(*read)

    async def user_connections(self, user_id: int) -> UserConnections:
        sessions = await self.redis.hgetall(self.key("usess", user_id))
        return user_connections_build({sid: int(n) for sid, n in sessions.items()})

    async def connected_now(self) -> list[ConnectedUser]:
        """Sockets of every process whose heartbeat is alive."""
        pids = sorted(await self.redis.smembers(self.key("procs")))
        async with self.redis.pipeline(transaction=False) as pipe:
            for pid in pids:
                pipe.exists(self.key("proc", pid))
                pipe.hgetall(self.key("sock", pid))
            answers = await pipe.execute()
        entries = []
        for alive, sockets in zip(answers[::2], answers[1::2], strict=True):
            if alive:
                entries += [_entry_parse(value) for value in sockets.values()]
        return connected_build(entries)

    async def close(self) -> None:
        """Close the client's connections, within TIMEOUT.

        redis-py can wait forever for a socket to finish closing
        (redis/redis-py#3941); a process shutting down does not wait for it.
        """
        await self._pipeline.close()
        await close_bounded(self.redis)

    def _stream_keys(self, pid: str, stream: str) -> tuple[str, ...]:
        return _stream_keys(self.prefix, pid, stream)


@lru_cache(maxsize=4096)  # every subscribe and unsubscribe names them: a few are hot
def _stream_keys(prefix: str, pid: str, stream: str) -> tuple[str, ...]:
    """The keys of the join, leave and read scripts (KEYS in their comments)."""
    return (
        f"{prefix}subs:{pid}",
        *(
            f"{prefix}{kind}:{stream}"
            for kind in ("pres", "puser", "pver", "pjoin", "pord")
        ),
    )


def _snapshot_parse(
    version: str | None, count: int, listed_count: int, listed: str
) -> Snapshot:
    """A snapshot from READ's reply: the version, the total, how many are
    listed and their parts."""
    return Snapshot(
        listed=listed,
        count=count,
        version=int(version or 0),
        truncated=count > listed_count,
    )


def _entry_parse(value: str) -> SocketEntry:
    user_id, sid, name = value.split(SEPARATOR, 2)
    return SocketEntry(user_id=int(user_id), sid=sid, username=_name_parse(name))


def _name_parse(name: str) -> str:
    """The JSON a name is stored as; builds before it stored the name as is.

    Read both: a process of an earlier build that dies during a rolling
    upgrade must still be cleaned up, its users' leaves sent.
    """
    try:
        parsed = json.loads(name)
    except ValueError:
        return name
    return parsed if isinstance(parsed, str) else name


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
