"""What one subscribe with presence costs the registry, measured on its own.

    .venv/bin/python -m bench.presence_micro [--users 200] [--redis-url URL]
    .venv/bin/python -m bench.presence_micro --paced [--rate 800] [--seconds 5]

A stream holds `--users` users; one more socket joins it with the snapshot
(`stream_join_read`), its `presence` frame is rendered, and it leaves:
`--cycles` times, best of `--rounds`. Reports the process's CPU and the wall
time per cycle, in memory and, when Redis answers at `--redis-url`, through
Redis with Redis' own CPU per script call (`INFO commandstats`, reset first:
use a redis-server nothing else is using). The churn cases of `make bench`
measure presence in a whole server; this isolates the store and the frame,
whose share of a churn case is too small to see through a noisy machine.

`--paced` measures instead the whole presence part of a socket's subscribe
and unsubscribe (`StreamPresence`: watch, register, snapshot frame, leave,
the outbox's windows and the relay), in memory, at the churn case's pace:
20 churners, a new user every 5 cycles, `--rate` cycles a second in all,
200 watchers. Frames go to a socket that only counts them (daphne's send is
not in it). It reports the CPU per cycle with presence and, for the same
churn without it, what the harness costs alone, and where the difference
goes. Run back to back in a tight loop, the same code takes about half as
long: at a server's pace, caches are cold.
"""

import argparse
import asyncio
import itertools
import os
import time
import uuid
from collections import Counter

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authsocket.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")  # no server here: no secrets needed

import django  # noqa: E402

django.setup()

from channels.layers import get_channel_layer  # noqa: E402

from realtime.presence import registry_reset  # noqa: E402
from realtime.presence.broadcast import registry_started  # noqa: E402
from realtime.presence.memory import MemoryStore  # noqa: E402
from realtime.presence.redis_store import (  # noqa: E402
    RedisStore,
    close_bounded,
    redis_client,
)
from realtime.presence.registry import SocketRegistry  # noqa: E402
from realtime.presence_frames import StreamPresence, snapshot_frame  # noqa: E402
from realtime.streams import stream_parse  # noqa: E402

STREAM = "room:micro"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--paced",
        action="store_true",
        help="the socket's whole presence path at the churn case's pace",
    )
    parser.add_argument("--rate", type=float, default=800, help="--paced only")
    parser.add_argument("--seconds", type=float, default=5, help="--paced only")
    return parser.parse_args()


async def measure(store, args) -> tuple[float, float]:
    """Best CPU and wall µs per join-with-snapshot, frame and leave."""
    registry = SocketRegistry(store, ttl=30)
    await registry.start()
    try:
        for user_id in range(1000, 1000 + args.users):
            socket_id = f"w{user_id}"
            await registry.socket_open(
                socket_id, user_id=user_id, username=f"user{user_id}", sid="s"
            )
            await registry.stream_join(socket_id, STREAM)
        await registry.socket_open("c", user_id=1, username="churner", sid="s")
        best_cpu = best_wall = float("inf")
        for _ in range(args.rounds):
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(args.cycles):
                _, snapshot = await registry.stream_join_read("c", STREAM)
                snapshot_frame(STREAM, snapshot)
                await registry.stream_leave("c", STREAM)
            best_cpu = min(best_cpu, time.process_time() - cpu)
            best_wall = min(best_wall, time.perf_counter() - wall)
        return best_cpu / args.cycles * 1e6, best_wall / args.cycles * 1e6
    finally:
        await registry.stop()


async def redis_figures(args) -> str:
    client = redis_client(args.redis_url)
    prefix = f"bench-micro-{uuid.uuid4().hex[:8]}:"
    try:
        await client.ping()
    except Exception as exc:
        await close_bounded(client)
        return f"redis: not measured ({type(exc).__name__}: {exc})"
    store = RedisStore(redis_client(args.redis_url), prefix=prefix)
    try:
        await client.config_resetstat()
        cpu, wall = await measure(store, args)
        stats = (await client.info("commandstats")).get("cmdstat_evalsha", {})
        script = stats.get("usec_per_call", 0.0)
        return (
            f"redis: {cpu:.0f} µs CPU, {wall:.0f} µs wall per cycle; "
            f"Redis {script:.0f} µs per script call"
        )
    finally:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await store.close()
        await close_bounded(client)


class CountingSocket:
    """What `StreamPresence` needs of a consumer; frames are only counted."""

    def __init__(self, name: str, layer) -> None:
        self.channel_name, self.channel_layer, self.frames = name, layer, 0

    async def send(self, text_data: str) -> None:
        self.frames += 1

    async def send_frame(self, *args, **fields) -> None:
        self.frames += 1

    async def layer_failed(self, operation: str, exc: BaseException) -> None:
        raise exc


class Member:
    """The user a socket belongs to, as `StreamPresence` reads it."""

    def __init__(self, pk: int) -> None:
        self.pk, self.username = pk, f"user{pk}"


async def presence_of(registry, layer, user_id: int) -> StreamPresence:
    socket = CountingSocket(f"s{user_id}", layer)
    await registry.socket_open(
        socket.channel_name, user_id=user_id, username=f"user{user_id}", sid="s"
    )
    return StreamPresence(socket=socket, user=Member(user_id))


async def paced(args, *, presence: bool) -> tuple[float, Counter]:
    """CPU µs per cycle, and µs per cycle in each step (with presence)."""
    layer, registry = get_channel_layer(), await registry_started()
    stream = stream_parse("room:micro", user_id=None)
    for user_id in range(10**6, 10**6 + args.users):
        watcher = await presence_of(registry, layer, user_id)
        await watcher.watch(stream, wanted=True)
        await watcher.subscribed(stream)
        await watcher.snapshot_send(stream)
    users, steps, cycles = itertools.count(1), Counter(), [0]

    async def step(name: str, call) -> None:
        start = time.perf_counter_ns()
        await call
        steps[name] += time.perf_counter_ns() - start

    async def churner(deadline: float) -> None:
        while time.perf_counter() < deadline:
            churning = await presence_of(registry, layer, next(users))
            for _ in range(5):  # the churn case's cycles per socket
                if presence:
                    await step("watch", churning.watch(stream, wanted=True))
                    await step("register, snapshot", churning.subscribed(stream))
                    await step("snapshot frame", churning.snapshot_send(stream))
                await asyncio.sleep(0.005)  # subscribed for a moment
                if presence:
                    await step("leave", churning.ended(stream))
                cycles[0] += 1
                await asyncio.sleep(20 / args.rate)
            await churning.closed()
            await registry.socket_close(churning.socket.channel_name)

    cpu, start = time.process_time(), time.perf_counter()
    await asyncio.gather(*(churner(start + args.seconds) for _ in range(20)))
    cpu = time.process_time() - cpu
    count = max(cycles[0], 1)
    return cpu / count * 1e6, Counter({k: v / count / 1000 for k, v in steps.items()})


async def paced_figures(args) -> None:
    """The churn with presence and without, each in a fresh registry."""
    on, steps = await paced(args, presence=True)
    await registry_reset()
    off, _ = await paced(args, presence=False)
    await registry_reset()
    print(
        f"paced at {args.rate:.0f} cycles/s, {args.users} watchers: presence "
        f"{on - off:.0f} µs CPU per cycle ({on:.0f} with, {off:.0f} harness alone)"
    )
    print("  " + ", ".join(f"{k} {v:.1f} µs" for k, v in steps.items()))


async def main() -> None:
    args = parse_args()
    if args.paced:
        await paced_figures(args)
        return
    cpu, wall = await measure(MemoryStore(), args)
    print(
        f"{args.users} users on the stream, {args.cycles} cycles, best of {args.rounds}"
    )
    print(f"memory: {cpu:.0f} µs CPU, {wall:.0f} µs wall per cycle")
    print(await redis_figures(args))


if __name__ == "__main__":
    asyncio.run(main())
