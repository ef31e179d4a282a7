"""What one subscribe with presence costs the registry, measured on its own.

    .venv/bin/python -m bench.presence_micro [--users 200] [--redis-url URL]

A stream holds `--users` users; one more socket joins it with the snapshot
(`stream_join_read`), its `presence` frame is rendered, and it leaves:
`--cycles` times, best of `--rounds`. Reports the process's CPU and the wall
time per cycle, in memory and, when Redis answers at `--redis-url`, through
Redis with Redis' own CPU per script call (`INFO commandstats`, reset first:
use a redis-server nothing else is using). The churn cases of `make bench`
measure presence in a whole server; this isolates the store and the frame,
whose share of a churn case is too small to see through a noisy machine.
"""

import argparse
import asyncio
import os
import time
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authsocket.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")  # no server here: no secrets needed

import django  # noqa: E402

django.setup()

from realtime.presence.memory import MemoryStore  # noqa: E402
from realtime.presence.redis_store import (  # noqa: E402
    RedisStore,
    close_bounded,
    redis_client,
)
from realtime.presence.registry import SocketRegistry  # noqa: E402
from realtime.presence_frames import snapshot_frame  # noqa: E402

STREAM = "room:micro"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
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


async def main() -> None:
    args = parse_args()
    cpu, wall = await measure(MemoryStore(), args)
    print(
        f"{args.users} users on the stream, {args.cycles} cycles, best of {args.rounds}"
    )
    print(f"memory: {cpu:.0f} µs CPU, {wall:.0f} µs wall per cycle")
    print(await redis_figures(args))


if __name__ == "__main__":
    asyncio.run(main())
