"""Instructions per subscribe and unsubscribe with presence: a figure noise cannot move.

    .venv/bin/python -m bench.presence_instructions [--cycles 2000]
        [--app-dir DIR] [--redis-url redis://127.0.0.1:6379/0]

On the two-core bench machine one timed run of the churn case moves by
±4 %, about half of what presence costs it (docs/streams.md, "What
presence costs"): a saving of a few microseconds per subscribe cannot be
told from noise there. This counts it instead. The same deterministic churn
as `bench/presence_micro.py --paced`, in one process and in memory: 200
sockets watch `room:micro`, 20 churners take turns subscribing with
presence and unsubscribing (so about half are on the stream at any time,
and they are told of each other's leaves), each churner opening a new
socket as a new user every 5 subscribes, and the outbox's window closes
every 160 cycles by a virtual clock. It runs `--cycles` cycles under
valgrind's callgrind with the presence steps and without them (the same
sockets, users and turns), each for `--cycles` and for twice as many, and
reports the difference per cycle of the extra cycles: what a cycle costs
once the churn runs, without what a run pays once (start-up, and a first
window that tells all 200 watchers of the churners it found). Counted over
a single length instead, that once-only part added about 14k instructions
per cycle at 2,000 cycles.
Frames go to a socket that only counts them: daphne's send is not in it.
With `--redis-url` the registry is kept in that Redis (each run under a
key prefix of its own, removed afterwards): this process's side of the
scripts is counted, not Redis' own work.

Callgrind counts instructions, not time (caches and the kernel are not in
it), so this complements the churn case rather than replacing it. Two runs
of the same code agree within 0.1 %. `--app-dir` counts another checkout
(one with bench/presence_micro.py), to compare two versions. About a
minute and a half (in memory): valgrind runs Python some fifty times slower.
"""

import argparse
import asyncio
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
CHURNERS = 20
CYCLES_PER_SOCKET = 5  # as in the churn case of `make bench`
WATCHERS = 200
WINDOW_TURNS = 320  # turns (a subscribe or an unsubscribe) per presence window
RUN_TIMEOUT_S = 900.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--app-dir", default=str(REPO_DIR), help="checkout to count")
    parser.add_argument(
        "--redis-url",
        default="",
        help="keep the registry in this Redis (a prefix of its own)",
    )
    return parser.parse_args()


async def churn(cycles: int, presence: bool, redis_url: str | None) -> None:
    """The churn in memory, or with the registry in the Redis at `redis_url`
    under a prefix of its own (removed afterwards), so that the two counted
    runs can go side by side."""
    from bench.presence_micro import presence_of  # noqa: F401 (sets Django up)
    from realtime import presence as registry_module
    from realtime.presence.redis_store import RedisStore, redis_client
    from realtime.presence.registry import SocketRegistry

    if not redis_url:
        await churn_steps(cycles, presence)
        return
    prefix = f"bench-instructions-{os.getpid()}:"
    store = RedisStore(redis_client(redis_url), prefix=prefix)
    registry_module._registry = SocketRegistry(store, ttl=30)
    try:
        await churn_steps(cycles, presence)
    finally:
        await registry_module.registry_reset()
        client = redis_client(redis_url)
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def churn_steps(cycles: int, presence: bool) -> None:
    """The churn, one step at a time; presence steps only when `presence`."""
    from channels.layers import get_channel_layer

    from bench.presence_micro import presence_of
    from realtime.presence import broadcast
    from realtime.streams import stream_parse

    layer, registry = get_channel_layer(), await broadcast.registry_started()
    stream = stream_parse("room:micro", user_id=None)
    for user_id in range(10**6, 10**6 + WATCHERS):
        watcher = await presence_of(registry, layer, user_id)
        await watcher.watch(stream, wanted=True)
        await watcher.subscribed(stream)
        await watcher.snapshot_send(stream)
    outbox = broadcast._outbox_get()
    clock = [0.0]  # the window closes by turns, not by the (slowed) wall clock
    outbox.clock = lambda: clock[0]
    outbox._timer_start = lambda: None
    users, sockets, on = itertools.count(1), [None] * CHURNERS, [False] * CHURNERS
    for turn in range(2 * cycles):
        i = turn % CHURNERS
        if not on[i]:
            sockets[i] = await fresh_socket(registry, layer, sockets[i], users)
            if presence:
                await sockets[i][0].watch(stream, wanted=True)
                await sockets[i][0].subscribed(stream)
                await sockets[i][0].snapshot_send(stream)
            sockets[i][1] += 1
        elif presence:
            await sockets[i][0].ended(stream)
        on[i] = not on[i]
        clock[0] += 0.2 / WINDOW_TURNS
        # Mid-round, so that half the churners are on the stream when told.
        if turn % WINDOW_TURNS == WINDOW_TURNS - 11:
            if presence:
                await outbox.send_due()
            # The relay's task hands the batch over. Both runs turn the loop
            # alike: turns a server makes anyway are not presence's cost.
            for _ in range(200):
                await asyncio.sleep(0)


async def fresh_socket(registry, layer, current, users):
    """The churner's socket, or a new one as a new user every few cycles."""
    from bench.presence_micro import presence_of

    if current is not None and current[1] < CYCLES_PER_SOCKET:
        return current
    if current is not None:
        await current[0].closed()
        await registry.socket_close(current[0].socket.channel_name)
    return [await presence_of(registry, layer, next(users)), 0]


def counted(args, presence: bool, cycles: int, workdir: Path) -> int:
    """Instructions of one whole run under callgrind (start-up included)."""
    out = workdir / f"callgrind-{int(presence)}-{cycles}.out"
    inner = ["presence_instructions", "--inner", str(presence), "--cycles"]
    inner += [str(cycles), "--redis-url", args.redis_url]
    code = (
        "import sys, runpy; "
        f"sys.path[:0] = [{args.app_dir!r}]; "
        f"sys.argv = {inner!r}; "
        f"runpy.run_path({__file__!r}, run_name='__main__')"
    )
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-c",
            code,
        ],
        check=True,
        capture_output=True,
        cwd=args.app_dir,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        timeout=RUN_TIMEOUT_S,
    )
    found = re.search(r"^(?:summary|totals):\s+(\d+)", out.read_text(), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(found.group(1))


def main() -> None:
    if "--inner" in sys.argv:  # one counted run, started by `counted`
        presence = sys.argv[sys.argv.index("--inner") + 1] == "True"
        cycles = int(sys.argv[sys.argv.index("--cycles") + 1])
        redis_url = sys.argv[sys.argv.index("--redis-url") + 1]
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authsocket.settings")
        asyncio.run(churn(cycles, presence, redis_url or None))
        return
    args = parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    runs = list(itertools.product((True, False), (args.cycles, 2 * args.cycles)))
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as pool:
        totals = dict(
            zip(
                runs,
                pool.map(lambda run: counted(args, *run, Path(tmp)), runs),
                strict=True,
            )
        )
    on, off = (
        totals[presence, 2 * args.cycles] - totals[presence, args.cycles]
        for presence in (True, False)
    )
    print(
        json.dumps(
            {
                "cycles": args.cycles,
                "app_dir": args.app_dir,
                "redis": bool(args.redis_url),
                "ir_per_cycle_presence": round((on - off) / args.cycles),
                "ir_per_cycle_with": round(on / args.cycles),
                "ir_per_cycle_without": round(off / args.cycles),
            }
        )
    )


if __name__ == "__main__":
    main()
