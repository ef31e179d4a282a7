"""Instructions per echo round trip, metrics on and off: a ratio noise cannot move.

    bench/.venv-peers/bin/python -m bench.instructions [--round-trips 1000]
        [--sockets 1]

Prints one JSON object; `make bench` runs it beside the timed metrics on/off
runs and reports it under "Cost of metrics".

On a shared two-core machine one timed run of echo moves by ±20 %, more than
the cost being judged (docs/metrics.md, "Cost"). This runs authsocket's
daphne under valgrind's callgrind with instrumentation off while it starts,
opens the sockets, turns instrumentation on for exactly N `ping` → `pong`
round trips, off again, and reads the instructions executed (Ir) from the
dump written at exit, once with `AUTHSOCKET_METRICS=1` and once with `0`.
Under valgrind those round trips take about fifty times longer than they
would, so the work a process does by the clock (the revocation poll, the
heartbeat, daphne's connection checks) would weigh fifty times too much: a
second dump counts the same sockets sitting idle for as long, and that is
subtracted. One socket by default: with several, how many frames each wake
of the event loop finds depends on timing, and so does the loop's overhead
per round trip. What is left still moves by about ±1 % between two runs
(the clock's work is not exactly the same twice).
Callgrind counts instructions, not seconds: for the same build and input the
count is the same whatever else the machine does, so on/off is the cost of
counting and nothing else. It does not see what instructions cost (cache
misses, the kernel's side of a send), so it complements the timed runs
rather than replacing them. Takes a few minutes (valgrind runs Python about
50 times slower once instrumented).
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

from bench.client import Target, open_welcomed, recv_type
from bench.run import ORIGIN
from bench.servers import BENCH_DIR, BENCH_PYTHON, KINDS, REPO_DIR, Deployment
from tests.servers import DaphneServer

START_TIMEOUT_S = 300.0  # Django starts slowly under valgrind, even uninstrumented
WARMUP_ROUND_TRIPS = 20  # per socket, before counting: caches and code paths warm
CONTROL_TIMEOUT_S = 120.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=1000)
    parser.add_argument("--sockets", type=int, default=1)
    return parser.parse_args()


def callgrind_python(workdir: Path, out: Path, *options: str) -> str:
    """An executable that runs the bench's Python under callgrind, uninstrumented.

    `options`: more of callgrind's (e.g. `--separate-threads=yes`).
    """
    wrapper = workdir / "python-callgrind"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"exec valgrind --tool=callgrind --instr-atstart=no {' '.join(options)} "
        f'--callgrind-out-file={out} {BENCH_PYTHON} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return str(wrapper)


def instrument(pid: int, on: bool) -> None:
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(pid)],
        check=True,
        capture_output=True,
        timeout=CONTROL_TIMEOUT_S,
    )


async def echo_counted(server: DaphneServer, tokens: list[str], round_trips: int):
    """Open the sockets and warm them up, then count exactly `round_trips`."""
    target = Target(server.ws, ORIGIN)
    sockets = [await open_welcomed(target, t, timeout=60) for t in tokens]
    ping = json.dumps({"type": "ping"})

    async def echo(ws, count):
        for _ in range(count):
            await ws.send(ping)
            await recv_type(ws, "pong", timeout=60)

    await asyncio.gather(*(echo(ws, WARMUP_ROUND_TRIPS) for ws in sockets))
    share, extra = divmod(round_trips, len(sockets))
    counts = [share + (i < extra) for i in range(len(sockets))]
    pid = server.process.pid
    instrument(pid, True)
    started = time.monotonic()
    await asyncio.gather(*(echo(ws, n) for ws, n in zip(sockets, counts, strict=True)))
    busy = time.monotonic() - started
    instrument(pid, False)
    dump(pid)  # the round trips (with their share of the clock's work)
    instrument(pid, True)
    await asyncio.sleep(busy)  # the measurement: idle for as long, nothing to await
    instrument(pid, False)
    dump(pid)  # the clock's work alone
    for ws in sockets:
        await ws.close()


def dump(pid: int) -> None:
    subprocess.run(
        ["callgrind_control", "-d", str(pid)],
        check=True,
        capture_output=True,
        timeout=CONTROL_TIMEOUT_S,
    )


def instructions(deployment, tokens: list[str], args, metrics: bool) -> int:
    """Ir of `args.round_trips` echo round trips on a fresh server."""
    workdir = deployment.workdir
    out = workdir / f"callgrind-metrics-{int(metrics)}.out"
    server = DaphneServer(
        {**deployment.env, "AUTHSOCKET_METRICS": "1" if metrics else "0"},
        log_path=workdir / f"daphne-metrics-{int(metrics)}.log",
        app=deployment.kind.asgi_app,
        options=("-v", "0"),
        python=callgrind_python(workdir, out),
        cwd=deployment.kind.project_dir,
        backlog=1024,
        start_timeout=START_TIMEOUT_S,
    )
    server.start()
    try:
        asyncio.run(echo_counted(server, tokens, args.round_trips))
    finally:
        server.stop(timeout=CONTROL_TIMEOUT_S)
    busy, idle = (total_ir(Path(f"{out}.{part}")) for part in (1, 2))
    return busy - idle


def total_ir(dump_path: Path) -> int:
    """The instructions collected since the previous dump, from callgrind's file."""
    text = dump_path.read_text()
    found = re.search(r"^totals:\s+(\d+)", text, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no instruction total in {dump_path}")
    return int(found.group(1))


def callgrind_workdir(name: str) -> Path:
    """A fresh directory for one counted run; exits if valgrind is missing."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind (with callgrind_control) is not installed")
    return BENCH_DIR / "results" / "tmp" / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}"


def main() -> None:
    args = parse_args()
    workdir = callgrind_workdir("instructions")
    kind = KINDS["authsocket"]
    deployment = Deployment.create(kind, workdir, str(BENCH_PYTHON))
    deployment.env["PYTHONPATH"] = os.pathsep.join([str(REPO_DIR)])
    deployment.manage("migrate", "--no-input", "-v", "0")
    tokens = deployment.mint("instr", args.sockets, 3600).read_text().split()
    per_trip = {}
    for metrics in (True, False):
        counted = instructions(deployment, tokens, args, metrics)
        per_trip[metrics] = counted / args.round_trips
    on, off = per_trip[True], per_trip[False]
    print(
        json.dumps(
            {
                "round_trips": args.round_trips,
                "sockets": args.sockets,
                "ir_per_round_trip_on": round(on),
                "ir_per_round_trip_off": round(off),
                "on_vs_off": round(off / on, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
