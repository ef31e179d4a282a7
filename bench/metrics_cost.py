"""What counting costs one echo round trip, measured without the network.

    .venv/bin/python -m bench.metrics_cost [--calls 200000] [--echo-ms 0.10]

End to end, metrics on against off differ by a few microseconds in a round
trip of about a hundred, well inside the ±20 % a single run moves on a
shared machine. This times the very code an echo runs only when metrics are
on, in a tight loop on one core: the `frame_received` counter and the
socket middleware's wrapped `send` (one `pong` each). Each is timed with
metrics on and off, the better of several repeats, so what is left is the
cost and not the machine's noise. `--echo-ms` is the server CPU per round
trip to compare with (bench/RESULTS.md, "Cost of metrics").
"""

import argparse
import asyncio
import json
import os
import time

ECHO_FRAME_TYPES = {"ping": None, "subscribe": None, "publish": None}
REPEATS = 5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--echo-ms", type=float, default=0.10)
    parser.add_argument("--json", action="store_true", help="one JSON object out")
    return parser.parse_args()


def best_of(measure) -> float:
    """The fastest of REPEATS runs, in seconds: the least disturbed one."""
    return min(measure() for _ in range(REPEATS))


def time_counter(calls: int) -> float:
    from authsocket import metrics

    def run() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            metrics.frame_received("ping", known=ECHO_FRAME_TYPES)
        return time.perf_counter() - start

    return best_of(run)


def time_send(calls: int) -> float:
    from realtime.socket_metrics import SocketMetricsMiddleware

    async def sink(message):
        return None

    async def app(scope, receive, send):
        await send({"type": "websocket.accept"})
        for _ in range(calls):
            await send({"type": "websocket.send", "text": "{}"})

    async def run_once() -> float:
        middleware = SocketMetricsMiddleware(app)
        start = time.perf_counter()
        await middleware({"type": "websocket"}, None, sink)
        return time.perf_counter() - start

    return best_of(lambda: asyncio.run(run_once()))


def measure(calls: int, enabled: bool) -> dict[str, float]:
    from django.conf import settings

    settings.AUTHSOCKET_METRICS = enabled
    return {"counter": time_counter(calls), "send": time_send(calls)}


def main() -> None:
    args = parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authsocket.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")  # no secrets needed: nothing is signed
    import django

    django.setup()
    on, off = measure(args.calls, True), measure(args.calls, False)
    extra = {part: (on[part] - off[part]) / args.calls * 1e6 for part in on}
    total = sum(extra.values())
    if args.json:
        print(json.dumps({"calls": args.calls, "repeats": REPEATS, "us": extra}))
        return
    echo_us = args.echo_ms * 1000
    print(f"metrics work per echo round trip, best of {REPEATS} x {args.calls}:")
    for part, micro in extra.items():
        print(f"  {part:8s} {micro:6.3f} µs")
    print(f"  {'total':8s} {total:6.3f} µs = {total / echo_us:.1%} of {echo_us:g} µs")
    print(f"  → on/off ratio from this work alone: {echo_us / (echo_us + total):.3f}×")


if __name__ == "__main__":
    main()
