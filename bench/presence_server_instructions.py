"""Instructions per subscribe in the churn case, presence on and off, through daphne.

    bench/.venv-peers/bin/python -m bench.presence_server_instructions
        [--seconds 60] [--slices 1] [--stretch 50] [--app-dir DIR]

The timed churn case (`make bench`, "Presence") moves by several percent
between two runs on the shared two-core machine, and within one run the
server's CPU per subscribe was seen to move from 0.92 to 1.6 ms between two
slices a few seconds apart: too much to judge a target of 0.9×.
`bench/presence_instructions.py` counts the presence path alone, in one
process; this counts the whole case as a server runs it: authsocket under
daphne, run by valgrind's callgrind, with the churn case's load (200
watchers asking for presence on a `benchp:` stream and 200 on a `benchn:`
one, 20 churners subscribing and unsubscribing 5 times per socket, asking
for presence on `benchp:`, a marker published to the side being churned).
The two sides take turns, `--slices` slices each, `--seconds` in all per
side; then the server idles for as long. It counts daphne's event-loop
thread (every frame, daphne's and Twisted's work, the channel layer,
presence), takes out what that thread does by the clock while idle, and
divides by the subscribes. The machine's mood is not in it, but the
interleaving of 20 churners is, and so is how many subscribes a presence
window holds (a slower server amortizes each window's dispatch over fewer):
on 2026-12-06 one slice per side gave 0.88×, 0.91× and 0.87×, three
slices per side 0.86× and 0.84× (each slice ends with a window of
leaves), and a run with other work on the machine 0.80×. It is a
diagnostic, not a verdict: the dumps it leaves in bench/results/tmp/presence-instructions-*/ (one per
slice, `.N-01` the event-loop thread) compare function by function with
`callgrind_annotate`, in the interpreter's and the C extensions' own
functions (copies, JSON, dicts), not per Python function.

Under valgrind the server runs some fifty times slower, while the clock does
not. The presence window and the publisher's interval are stretched by
`--stretch` (a bench-only setting of bench/presence_app), so that a window
holds about as many subscribes as in the timed case (about 160; the output
says how many it held). Left out: the revocation poll's thread (clock work,
which valgrind's slowness would weigh fifty times too much) and the threads
of `database_sync_to_async` (the same work on both sides). Callgrind counts
instructions in user space: the kernel's side of a send is not in it, and
a large copy counts one instruction per byte (`rep movsb`), so an 11 KB
snapshot frame weighs more here than it costs. It complements the timed
case rather than replacing it. Takes about six minutes.
"""

import argparse
import asyncio
import json
import os
import time
from dataclasses import replace
from pathlib import Path

from bench.client import Target, abort_all, open_welcomed
from bench.instructions import (
    CONTROL_TIMEOUT_S,
    START_TIMEOUT_S,
    callgrind_python,
    callgrind_workdir,
    dump,
    instrument,
    total_ir,
)
from bench.presence_scenarios import ChurnPlan, ChurnSide
from bench.run import ORIGIN, PRESENCE_SETTINGS
from bench.scenarios import open_many
from bench.servers import BENCH_PYTHON, KINDS, REPO_DIR, Deployment
from tests.servers import DaphneServer

WATCHERS = 200  # per side, as in the churn case
CHURNERS = 20
CYCLES_PER_SOCKET = 5
WINDOW_MS = 200  # the default presence window
INTERVAL_S = 0.2  # between two markers, in the churn case
WARMUP_S = 10.0  # of churn per side before counting (code paths, caches)
USERS = 2000
TRAILING_WINDOWS = 1.2  # counted after each slice: its last leaves go out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per side")
    parser.add_argument(
        "--slices", type=int, default=1, help="alternating slices per side"
    )
    parser.add_argument(
        "--stretch", type=float, default=50.0, help="how much slower valgrind runs"
    )
    parser.add_argument("--app-dir", default=str(REPO_DIR), help="checkout to count")
    return parser.parse_args()


async def counted_churn(server: DaphneServer, tokens: list[str], args) -> dict:
    """Warm both sides, count their churn in alternating slices, then idle.

    Each slice is one dump: its churn, then its last window's batches (so
    that none lands in the other side's count). Returns, per side, the
    dumps, subscribes, seconds and the churners' errors; and the idle dump
    and its seconds.
    """
    target = Target(server.ws, ORIGIN)
    plan = ChurnPlan(
        watchers=WATCHERS,
        churners=CHURNERS,
        cycles=CYCLES_PER_SOCKET,
        duration=args.seconds,
        interval=INTERVAL_S * args.stretch,
    )
    tag = f"instr{os.getpid()}"
    sides = {
        "on": ChurnSide(f"benchp:{tag}", True, True),
        "off": ChurnSide(f"benchn:{tag}", False, False),
    }
    publisher = await open_welcomed(target, tokens[0], timeout=60)
    socks = await open_many(target, tokens[1:], 2 * WATCHERS, 10)
    await sides["on"].watch(socks[:WATCHERS])
    await sides["off"].watch(socks[WATCHERS:])
    pool, users = tokens[2 * WATCHERS + 1 :], iter(range(10**9))
    trailing_s = WINDOW_MS * args.stretch / 1000 * TRAILING_WINDOWS
    for side in sides.values():
        await side.churn(target, publisher, pool, users, plan, WARMUP_S)
    await asyncio.sleep(trailing_s)  # the warm-up's batches out
    pid, dumps = server.process.pid, 0
    figures = {
        mode: {"dumps": [], "subscribes": 0, "churn_s": 0.0, "wall_s": 0.0}
        for mode in sides
    }
    for _ in range(args.slices):
        for mode, side in sides.items():
            done, started = len(side.subscribes), time.monotonic()
            instrument(pid, True)
            await side.churn(
                target, publisher, pool, users, plan, args.seconds / args.slices
            )
            churned = time.monotonic() - started
            await asyncio.sleep(trailing_s)
            instrument(pid, False)
            dump(pid)
            dumps += 1
            figure = figures[mode]
            figure["dumps"].append(dumps)
            figure["subscribes"] += len(side.subscribes) - done
            figure["churn_s"] += churned
            figure["wall_s"] += time.monotonic() - started
    for mode, side in sides.items():  # a churner's failure shows, not hides
        figures[mode]["errors"] = side.errors
    idle_s = sum(f["wall_s"] for f in figures.values()) / len(figures)
    instrument(pid, True)
    await asyncio.sleep(idle_s)  # the measurement: the clock's work alone
    instrument(pid, False)
    dump(pid)
    figures["idle"] = {"dumps": [dumps + 1], "wall_s": idle_s}
    await abort_all([publisher, *socks])
    return figures


def per_subscribe(out: Path, figures: dict, stretch: float) -> dict:
    """Ir per subscribe on each side, on the event-loop thread, the clock's work out."""
    ir = {
        mode: sum(loop_thread_ir(out, part) for part in figure["dumps"])
        for mode, figure in figures.items()
    }
    idle_rate = ir["idle"] / figures["idle"]["wall_s"]
    window_s = WINDOW_MS * stretch / 1000
    result = {}
    for mode in ("on", "off"):
        side = figures[mode]
        work = ir[mode] - idle_rate * side["wall_s"]
        result[mode] = {
            "subscribes": side["subscribes"],
            "subscribes_per_window": round(
                side["subscribes"] / side["churn_s"] * window_s
            ),
            "ir_per_subscribe": round(work / max(side["subscribes"], 1)),
            "errors": len(side["errors"]),
            "error_samples": side["errors"][:3],
        }
    result["idle_share"] = round(idle_rate * figures["on"]["wall_s"] / ir["on"], 3)
    result["on_vs_off"] = round(
        result["off"]["ir_per_subscribe"] / result["on"]["ir_per_subscribe"], 4
    )
    return result


def loop_thread_ir(out: Path, part: int) -> int:
    """The instructions of the process's first thread (daphne's event loop) in
    dump `part`. The others are the revocation poll's (clock work, which
    valgrind's slowness would weigh fifty times too much) and the threads of
    `database_sync_to_async`, whose work is the same on both sides."""
    return total_ir(Path(f"{out}.{part}-01"))


def main() -> None:
    args = parse_args()
    workdir = callgrind_workdir("presence-instructions")
    kind = replace(KINDS["authsocket"], project_dir=Path(args.app_dir).resolve())
    deployment = Deployment.create(kind, workdir, str(BENCH_PYTHON))
    deployment.env["PYTHONPATH"] = os.pathsep.join(
        [str(kind.project_dir), str(REPO_DIR)]
    )
    deployment.env.update(PRESENCE_SETTINGS)
    deployment.env["BENCH_PRESENCE_WINDOW_MS"] = str(round(WINDOW_MS * args.stretch))
    deployment.manage("migrate", "--no-input", "-v", "0")
    tokens = deployment.mint("bench", USERS, 3600).read_text().split()
    out = workdir / "callgrind-churn.out"
    server = DaphneServer(
        deployment.env,
        log_path=workdir / "daphne.log",
        app=kind.asgi_app,
        options=("-v", "0"),
        python=callgrind_python(workdir, out, "--separate-threads=yes"),
        cwd=kind.project_dir,
        backlog=1024,
        start_timeout=START_TIMEOUT_S,
    )
    server.start()
    try:
        figures = asyncio.run(counted_churn(server, tokens, args))
    finally:
        server.stop(timeout=CONTROL_TIMEOUT_S)
    result = per_subscribe(out, figures, args.stretch)
    print(
        json.dumps(
            {
                "seconds": args.seconds,
                "slices": args.slices,
                "stretch": args.stretch,
                "app_dir": args.app_dir,
                **result,
            }
        )
    )


if __name__ == "__main__":
    main()
