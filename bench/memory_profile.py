"""Where the memory of an idle socket goes, per stack (docs/capacity.md).

    bench/.venv-peers/bin/python -m bench.memory_profile [--servers authsocket,noauth]
        [--count 2000] [--cycles 2] [--frames 10] [--top 25]

Two phases per stack, each on a freshly started daphne (bench.traced_daphne),
warmed like the idle scenario, with this process as the load generator
(pinned to the load-generator core, `?token=` sockets, one ping each):

- RSS: per held socket, then after they all close, for `--cycles` open/close
  cycles (is the high-water mark reused?), then after `malloc_trim(0)`;
- tracemalloc (`--frames` frames a trace): the allocations alive while N
  sockets are held minus those before, by allocation line, by package, and
  by the nearest frame in the stack's own code; the objects the collector
  tracks, by type; and what is still alive after they closed (leaks).

Figures per socket are the difference divided by N. Output: the tables on
stdout and everything in bench/results/tmp/memory-<stamp>/summary.json.
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

from bench.client import Target, abort_all, recv_type
from bench.run import ORIGIN
from bench.scenarios import open_many, ping_all
from bench.servers import (
    BENCH_DIR,
    BENCH_PYTHON,
    KINDS,
    LOADGEN_CORE,
    REPO_DIR,
    Deployment,
    Server,
)

CONTROL_TIMEOUT_S = 300.0  # a snapshot of a large traced heap takes a while
DRAIN_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 20.0
TOKEN_TTL_S = 6 * 3600
PING_BATCH = 100
START_ATTEMPTS = 4  # of tests/servers.py's start-up wait each
STDLIB = "/lib/python3"
NOT_OWN = "bench/"  # under the project directory, not the stack's


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="authsocket,noauth")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=2, help="RSS phase")
    parser.add_argument("--frames", type=int, default=10, help="0: no trace phase")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-rss", action="store_true", help="trace phase only")
    parser.add_argument("--app-dir", default=str(REPO_DIR))
    return parser.parse_args()


def log(message: str) -> None:
    print(f"[memory {time.strftime('%H:%M:%S')}] {message}", flush=True)


class SlowStart(Server):
    """A server given several start-up waits: tracemalloc slows start-up down."""

    def wait_ready(self) -> None:
        for attempt in range(START_ATTEMPTS):
            try:
                return super().wait_ready()
            except TimeoutError:
                if attempt == START_ATTEMPTS - 1:
                    raise


class Controlled:
    """A traced daphne and its control channel (bench.traced_daphne)."""

    def __init__(self, deployment: Deployment, label: str, frames: int):
        self.workdir = deployment.workdir
        self.control = self.workdir / f"{label}.control"
        env = {
            "BENCH_MEMORY_CONTROL": str(self.control),
            "BENCH_TRACEMALLOC_FRAMES": str(frames),
        }
        self.server = SlowStart(deployment, label, env, module="bench.traced_daphne")

    def __enter__(self) -> "Controlled":
        try:
            self.server.start()
        except BaseException:
            self.server.stop()  # started but never ready: not left behind
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    @property
    def target(self) -> Target:
        return Target(self.server.ws, ORIGIN)

    def ask(self, command: str) -> dict:
        """Send one command; its answer, waited for (bounded)."""
        out = Path(f"{self.control}.out")
        out.unlink(missing_ok=True)
        self.control.write_text(command)
        os.kill(self.server.pid, signal.SIGUSR1)
        deadline = time.monotonic() + CONTROL_TIMEOUT_S
        while not out.exists():
            if time.monotonic() > deadline or not self.server.alive():
                raise TimeoutError(f"no answer to {command!r}")
            time.sleep(0.05)  # another process: nothing to await but its file
        answer = json.loads(out.read_text())
        if "error" in answer:
            raise RuntimeError(f"{command!r}: {answer['error']}")
        return answer

    async def ask_async(self, command: str) -> dict:
        """`ask` off the event loop: the client's sockets stay serviced meanwhile."""
        return await asyncio.to_thread(self.ask, command)

    async def settled_async(self, baseline_fds: int) -> dict:
        return await asyncio.to_thread(self.settled, baseline_fds)

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.server.pid}/fd"))

    def settled(self, baseline_fds: int) -> dict:
        """Heap figures once every socket is gone and the heap stopped shrinking."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while self.fds() > baseline_fds + 2:
            if time.monotonic() > deadline:
                raise TimeoutError("the server still holds the sockets' descriptors")
            time.sleep(0.1)
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        last = self.ask("rss")
        while time.monotonic() < deadline:
            time.sleep(0.5)  # disconnect handlers and daphne's 1 s cleanup run
            now = self.ask("rss")
            if abs(now["allocated_blocks"] - last["allocated_blocks"]) < 200:
                return now
            last = now
        return last


async def warm(target: Target, tokens: list[str], concurrency: int) -> None:
    """What the idle scenario does first: imports, caches, connections."""
    sockets = await open_many(target, tokens, concurrency, concurrency)
    await ping_all(sockets)
    await abort_all(sockets)


async def hold(target, tokens, count, concurrency):
    """`count` welcomed sockets, each past one ping round trip.

    Pinged in batches: a traced server answers slowly, and a ping's wait is
    bounded.
    """
    sockets = await open_many(target, tokens, count, concurrency)
    for start in range(0, count, PING_BATCH):
        await ping_all(sockets[start : start + PING_BATCH])
    return sockets


async def close_all(sockets) -> None:
    for start in range(0, len(sockets), 1000):  # abort_all's bound is per batch
        await abort_all(sockets[start : start + 1000])


async def confirm(target: Target, token: str) -> None:
    """One more socket and ping: the server answers again after the closes."""
    [ws] = await open_many(target, [token], 1, 1)
    await ws.send(json.dumps({"type": "ping"}))
    await recv_type(ws, "pong")
    await abort_all([ws])


def rss_phase(deployment, tokens, args) -> dict:
    """RSS per held socket, after closing, across cycles, and after a trim."""
    with Controlled(deployment, "rss", 0) as server:
        # One event loop for every socket: a socket outlives no loop it was made on.
        return asyncio.run(_rss(server, tokens, args))


async def _rss(server: "Controlled", tokens, args) -> dict:
    target, ask = server.target, server.ask_async
    await warm(target, tokens, args.concurrency)
    idle = await server.settled_async(server.fds())
    baseline_fds = server.fds()
    cycles = []
    paused = None
    for cycle in range(args.cycles):
        sockets = await hold(target, tokens, args.count, args.concurrency)
        held = await ask("rss")
        if cycle == args.cycles - 1:  # the pause of a full collection, N held
            paused = (await ask("collect"))["seconds"]
        await close_all(sockets)
        closed = await server.settled_async(baseline_fds)
        await confirm(target, tokens[0])
        cycles.append({"held": held, "closed": closed})
    collected = await ask("garbage")
    trim = await ask("trim")
    first = cycles[0]["held"]["rss_kib"]
    return {
        "idle": idle,
        "cycles": cycles,
        "collect": collected,
        "collect_seconds_while_held": paused,
        "trim": trim,
        "kib_per_socket": round((first - idle["rss_kib"]) / args.count, 2),
    }


def trace_phase(deployment, tokens, args) -> dict:
    """tracemalloc snapshots: before, while holding, after closing."""
    paths = {
        step: deployment.workdir / f"{step}.tracemalloc"
        for step in ("before", "held", "closed")
    }
    with Controlled(deployment, "traced", args.frames) as server:
        answers = asyncio.run(_trace(server, tokens, args, paths))
    before, held, closed = answers
    snapshots = {step: load(path) for step, path in paths.items()}
    project = str(deployment.kind.project_dir)
    count = args.count
    return {
        "traced_kib": {
            "before": before["traced_kib"],
            "held": held["traced_kib"],
            "closed": closed["traced_kib"],
        },
        "traced_bytes_per_socket": round(
            (held["traced_kib"] - before["traced_kib"]) * 1024 / count
        ),
        "by_line": by_key(snapshots["held"], snapshots["before"], "lineno", count),
        "by_package": by_package(
            snapshots["held"], snapshots["before"], count, project
        ),
        "by_own_caller": by_caller(
            snapshots["held"], snapshots["before"], count, project
        ),
        "objects": objects_diff(held["objects"], before["objects"], count),
        "left_after_close": by_key(
            snapshots["closed"], snapshots["before"], "lineno", count
        ),
    }


async def _trace(server: "Controlled", tokens, args, paths) -> tuple:
    target, ask = server.target, server.ask_async
    await warm(target, tokens, args.concurrency)
    await server.settled_async(server.fds())
    baseline_fds = server.fds()
    before = await ask(f"snapshot {paths['before']}")
    sockets = await hold(target, tokens, args.count, args.concurrency)
    held = await ask(f"snapshot {paths['held']}")
    await close_all(sockets)
    await server.settled_async(baseline_fds)
    await confirm(target, tokens[0])
    closed = await ask(f"snapshot {paths['closed']}")
    return before, held, closed


def load(path: Path) -> tracemalloc.Snapshot:
    """A snapshot without tracemalloc's own allocations."""
    return tracemalloc.Snapshot.load(str(path)).filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )


def where(filename: str, project: str | None = None) -> str:
    """A short, readable name for a file: package-relative or project-relative."""
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1]
    if project and filename.startswith(project):
        return filename[len(project) + 1 :]
    if STDLIB in filename:
        return "stdlib/" + filename.split(STDLIB, 1)[1].split("/", 1)[1]
    return filename


def package(filename: str, project: str | None = None) -> str:
    if project and filename.startswith(project) and "site-packages/" not in filename:
        return "(the stack's own code)"
    name = where(filename, project)
    if name.startswith("stdlib/"):
        return "stdlib:" + name[7:].split("/", 1)[0].removesuffix(".py")
    return name.split("/", 1)[0].removesuffix(".py")


def by_key(new, old, key: str, count: int) -> list[dict]:
    rows = []
    for stat in new.compare_to(old, key):
        if stat.size_diff <= 0:
            continue
        frame = stat.traceback[-1]
        rows.append(
            {
                "site": f"{where(frame.filename)}:{frame.lineno}",
                "bytes_per_socket": round(stat.size_diff / count, 1),
                "blocks_per_socket": round(stat.count_diff / count, 2),
            }
        )
    return sorted(rows, key=lambda row: -row["bytes_per_socket"])


def by_package(new, old, count: int, project: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for stat in new.compare_to(old, "filename"):
        name = package(stat.traceback[-1].filename, project)
        totals[name] = totals.get(name, 0) + stat.size_diff / count
    return dict(sorted(((k, round(v, 1)) for k, v in totals.items()), key=_second))


def by_caller(new, old, count: int, project: str) -> dict[str, float]:
    """Each allocation charged to the nearest frame in the stack's own code.

    The innermost frame under the project directory (not its virtualenv);
    allocations with none in reach are charged to their package.
    """
    totals: dict[str, float] = {}
    for stat in new.compare_to(old, "traceback"):
        name = None
        for frame in reversed(stat.traceback):  # innermost first
            name = where(frame.filename, project)
            own = (
                frame.filename.startswith(project)
                and "site-packages/" not in frame.filename
                and not name.startswith(NOT_OWN)
            )
            if own:
                name = f"{name}:{frame.lineno}"
                break
            name = None
        if name is None:
            name = "(no own frame) " + package(stat.traceback[-1].filename)
        totals[name] = totals.get(name, 0) + stat.size_diff / count
    return dict(sorted(((k, round(v, 1)) for k, v in totals.items()), key=_second))


def _second(item):
    return -item[1]


def objects_diff(new: dict, old: dict, count: int) -> list[dict]:
    rows = []
    for name, (number, size) in new.items():
        before_number, before_size = old.get(name, (0, 0))
        if number - before_number <= 0:
            continue
        rows.append(
            {
                "type": name,
                "per_socket": round((number - before_number) / count, 2),
                "shallow_bytes_per_socket": round((size - before_size) / count, 1),
            }
        )
    return sorted(rows, key=lambda row: -row["shallow_bytes_per_socket"])


def profile(name: str, args, workdir: Path) -> dict:
    kind = KINDS[name]
    if kind.project_dir == REPO_DIR:
        kind = replace(kind, project_dir=Path(args.app_dir).resolve())
    deployment = Deployment.create(kind, workdir / name, str(BENCH_PYTHON))
    # bench.traced_daphne comes from this checkout, whatever the stack.
    deployment.env["PYTHONPATH"] = os.pathsep.join(
        [str(kind.project_dir), str(REPO_DIR)]
    )
    deployment.manage("migrate", "--no-input", "-v", "0")
    tokens_file = deployment.mint("memory", args.count, TOKEN_TTL_S)
    tokens = tokens_file.read_text().split()
    result = {"stack": name, "sockets": args.count}
    if not args.no_rss:
        log(f"{name}: RSS phase")
        result["rss"] = rss_phase(deployment, tokens, args)
    if args.frames > 0:
        log(f"{name}: tracemalloc phase ({args.frames} frames)")
        result["trace"] = trace_phase(deployment, tokens, args)
    return result


def show(result: dict, top: int) -> None:
    name, count = result["stack"], result["sockets"]
    print(f"\n=== {name}: {count} idle sockets ===")
    if "rss" in result:
        rss = result["rss"]
        print(f"RSS per held socket: {rss['kib_per_socket']} KiB")
        print(f"  idle after warm-up: {rss['idle']['rss_kib']} KiB")
        for i, cycle in enumerate(rss["cycles"], 1):
            held, closed = cycle["held"], cycle["closed"]
            print(
                f"  cycle {i}: held {held['rss_kib']} KiB, closed {closed['rss_kib']}"
                f" KiB (malloc in use {closed.get('malloc_in_use_kib')} KiB,"
                f" free in arenas {closed.get('malloc_free_kib')} KiB)"
            )
        collected = rss["collect"]
        print(
            f"  gc.collect(): {collected['unreachable']} unreachable objects, "
            f"{collected['before']['rss_kib']} -> {collected['after']['rss_kib']} KiB, "
            f"blocks {collected['before']['allocated_blocks']} -> "
            f"{collected['after']['allocated_blocks']}"
        )
        print(
            f"  one full collection with {count} sockets held: "
            f"{rss['collect_seconds_while_held']} s"
        )
        for name, number in list(collected["garbage"].items())[:12]:
            print(f"    {number:8d}  {name}")
        trim = rss["trim"]
        print(
            f"  malloc_trim(0): {trim['before']['rss_kib']} -> "
            f"{trim['after']['rss_kib']} KiB"
        )
    if "trace" in result:
        trace = result["trace"]
        print(f"traced (tracemalloc) per socket: {trace['traced_bytes_per_socket']} B")
        print("\nby package (bytes/socket):")
        for key, value in list(trace["by_package"].items())[:top]:
            print(f"  {value:9.1f}  {key}")
        print("\nby nearest own frame (bytes/socket):")
        for key, value in list(trace["by_own_caller"].items())[:top]:
            print(f"  {value:9.1f}  {key}")
        print("\nby allocation line (bytes/socket, blocks/socket):")
        for row in trace["by_line"][:top]:
            print(
                f"  {row['bytes_per_socket']:9.1f} {row['blocks_per_socket']:6.2f}"
                f"  {row['site']}"
            )
        print("\nobjects the collector tracks (per socket, shallow bytes):")
        for row in trace["objects"][:top]:
            print(
                f"  {row['shallow_bytes_per_socket']:9.1f} {row['per_socket']:6.2f}"
                f"  {row['type']}"
            )
        left = sum(row["bytes_per_socket"] for row in trace["left_after_close"])
        print(f"\nstill allocated after every socket closed: {left:.1f} B/socket")
        for row in trace["left_after_close"][:8]:
            print(f"  {row['bytes_per_socket']:9.1f}  {row['site']}")


def show_difference(results: list[dict], top: int) -> None:
    """Allocation lines of the first stack minus the second (same library code)."""
    traced = [r for r in results if "trace" in r]
    if len(traced) < 2:
        return
    first, second = traced[0], traced[1]
    lines = {row["site"]: row["bytes_per_socket"] for row in first["trace"]["by_line"]}
    for row in second["trace"]["by_line"]:
        lines[row["site"]] = lines.get(row["site"], 0) - row["bytes_per_socket"]
    total = (
        first["trace"]["traced_bytes_per_socket"]
        - second["trace"]["traced_bytes_per_socket"]
    )
    print(f"\n=== {first['stack']} minus {second['stack']}: {total} B/socket ===")
    ordered = sorted(lines.items(), key=_second)
    for site, value in ordered[:top]:
        print(f"  {value:9.1f}  {site}")
    print("  ...")
    for site, value in ordered[-5:]:
        print(f"  {value:9.1f}  {site}")


def main() -> None:
    args = parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(LOADGEN_CORE)})
    stamp = time.strftime("%Y%m%dT%H%M%S")
    workdir = BENCH_DIR / "results" / "tmp" / f"memory-{stamp}"
    results = [profile(name, args, workdir) for name in args.servers.split(",")]
    for result in results:
        show(result, args.top)
    show_difference(results, args.top)
    out = workdir / "summary.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"\nall figures: {out}")


if __name__ == "__main__":
    sys.exit(main())
