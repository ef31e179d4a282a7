"""Profiles one server under handshake (or echo) load: where the time goes.

    bench/.venv-peers/bin/python -m bench.profile [--server authsocket]
        [--scenario handshake] [--transport token] [--count 3000]

Reports, for the measured load only: the server CPU per operation, how that
CPU splits between the event-loop thread and the other threads (the
`database_sync_to_async` thread among them), and pyinstrument's call tree
of the event-loop thread (text and HTML in bench/results/tmp/profile-*/).
"""

import argparse
import contextlib
import os
import signal
import time
from dataclasses import replace
from pathlib import Path

from bench.run import FANOUT_ROOM, FULL, PRESENCE_SETTINGS, WARMUP, loadgen
from bench.servers import BENCH_DIR, BENCH_PYTHON, KINDS, REPO_DIR, Deployment, Server
from tests.servers import RedisProcess

REPORT_WAIT_S = 60.0
TREE_LINES = 120


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="authsocket", choices=sorted(KINDS))
    parser.add_argument(
        "--scenario",
        default="handshake",
        choices=("handshake", "echo", "fanout", "presence_churn"),
    )
    parser.add_argument(
        "--redis",
        action="store_true",
        help="presence_churn through a redis-server of its own (else in memory)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="presence_churn only: subscribes a second in all (0: flat out)",
    )
    parser.add_argument(
        "--off",
        action="store_true",
        help="presence_churn only: churn a stream without presence (the baseline)",
    )
    parser.add_argument("--transport", default="token")
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0, help="echo only")
    parser.add_argument("--subscribers", type=int, default=1000, help="fanout only")
    parser.add_argument("--publishes", type=int, default=10, help="fanout only")
    parser.add_argument("--app-dir", default=str(REPO_DIR))
    return parser.parse_args()


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of every thread of a process, by thread id."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def cpu_split(pid: int, before: dict, after: dict) -> dict:
    """CPU used during the load by the event-loop thread and by all others."""
    used = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    others = sorted((v for t, v in used.items() if t != pid), reverse=True)
    return {
        "event_loop_thread_s": round(used.get(pid, 0.0), 3),
        "other_threads_s": round(sum(others), 3),
        "busiest_other_threads_s": [round(v, 3) for v in others[:4]],
    }


def wait_for(path: Path) -> None:
    """Waits (bounded) for the profiler to finish writing its report."""
    deadline = time.monotonic() + REPORT_WAIT_S
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # written by another process on a signal
    if not path.exists():
        raise TimeoutError(f"no profile written to {path}")


def scenario_params(args) -> dict:
    if args.scenario == "handshake":
        return {
            "count": args.count,
            "concurrency": args.concurrency,
            "transport": args.transport,
        }
    if args.scenario == "echo":
        return {"concurrency": args.concurrency, "duration": args.duration}
    if args.scenario == "presence_churn":  # make bench's case, flat out or paced
        churn = FULL.presence["churn"]
        return {**churn, "presence": not args.off, "rate": args.rate}
    return {
        "subscribers": args.subscribers,
        "publishes": args.publishes,
        "room": FANOUT_ROOM,
    }


def scenario_env(args, cleanup: contextlib.ExitStack) -> dict:
    """The bench's stream kinds for presence, and a Redis of its own if asked."""
    if args.scenario != "presence_churn":
        return {}
    env = dict(PRESENCE_SETTINGS)
    if args.redis:
        redis = RedisProcess().start()
        cleanup.callback(redis.stop)
        env["REDIS_URL"] = redis.url
    return env


def profile(args, workdir: Path) -> None:
    kind = KINDS[args.server]
    if kind.name == "authsocket":
        kind = replace(kind, project_dir=Path(args.app_dir).resolve())
    deployment = Deployment.create(kind, workdir, str(BENCH_PYTHON))
    deployment.env["PYTHONPATH"] = os.pathsep.join(
        [str(kind.project_dir), str(REPO_DIR)]
    )
    deployment.manage("migrate", "--no-input", "-v", "0")
    if kind.has_demo_data:
        deployment.manage("demo_data")  # the public room fan-out publishes to
    users = max(min(args.count, 2000), args.subscribers + 1, FULL.users)
    tokens = deployment.mint("bench", users, 3600)
    out = workdir / "profile"
    with contextlib.ExitStack() as cleanup:
        env = {"BENCH_PROFILE_OUT": str(out), **scenario_env(args, cleanup)}
        result, split = profiled_load(args, deployment, env, tokens, out)
    show(args, result, split, out)


def profiled_load(args, deployment, env: dict, tokens: Path, out: Path):
    """The measured load on a profiled server: its result and CPU split."""
    server = Server(deployment, "profiled", env, module="bench.profiled_daphne").start()
    try:
        loadgen(server, "handshake", tokens, WARMUP | {"transport": args.transport})
        params = scenario_params(args)
        before = thread_cpu(server.pid)
        os.kill(server.pid, signal.SIGUSR1)
        result = loadgen(server, args.scenario, tokens, params)
        os.kill(server.pid, signal.SIGUSR2)
        split = cpu_split(server.pid, before, thread_cpu(server.pid))
        wait_for(out.with_suffix(".pyisession"))  # written last
    finally:
        server.stop()
    return result, split


def package_of(file_path: str) -> str:
    """The top-level package a frame's file belongs to (site-packages or ours)."""
    path = file_path or "?"
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/lib/python3" in path:
        return "stdlib:" + path.rsplit("/", 1)[-1].removesuffix(".py")
    parts = Path(path).parts
    return "/".join(parts[-2:-1]) or path


def self_times(out: Path) -> tuple[dict, dict]:
    """Self time per package and per function over the whole sampled tree."""
    from pyinstrument.session import Session

    by_package, by_function = {}, {}
    stack = [Session.load(str(out.with_suffix(".pyisession"))).root_frame()]
    while stack:
        frame = stack.pop()
        stack.extend(frame.children)
        if frame.children and frame.total_self_time == 0:
            continue
        package = package_of(frame.file_path)
        name = f"{frame.function} ({package})"
        by_package[package] = by_package.get(package, 0.0) + frame.total_self_time
        by_function[name] = by_function.get(name, 0.0) + frame.total_self_time
    return by_package, by_function


def top(table: dict, count: int) -> str:
    total = sum(table.values()) or 1.0
    rows = sorted(table.items(), key=lambda item: -item[1])[:count]
    return "\n".join(f"  {v / total:6.1%}  {k}" for k, v in rows)


def show(args, result: dict, split: dict, out: Path) -> None:
    keys = (
        "connections_per_s",
        "round_trips_per_s",
        "p50_ms",
        "p99_ms",
        "server_cpu_s",
        "server_cpu_ms_per_op",
        "errors",
    )
    print(f"{args.server} {args.scenario} ({args.transport}):")
    print("  " + ", ".join(f"{k}={result[k]}" for k in keys if k in result))
    print(f"  CPU split while loaded: {split}")
    print("  (profiles under load include the profiler's own overhead)")
    print(f"  call tree of the event-loop thread: {out}.txt / {out}.html\n")
    by_package, by_function = self_times(out)
    print("self time of the event-loop thread by package (idle wait included):")
    print(top(by_package, 15))
    print("\nby function:")
    print(top(by_function, 25))
    lines = out.with_suffix(".txt").read_text().splitlines()
    print("\n" + "\n".join(lines[:TREE_LINES]))


def main() -> None:
    args = parse_args()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    workdir = BENCH_DIR / "results" / "tmp" / f"profile-{args.server}-{stamp}"
    profile(args, workdir)


if __name__ == "__main__":
    main()
