"""Draw the Grafana dashboard's panels from /metrics scraped during a short load.

    bench/.venv-peers/bin/python -m bench.metrics_dashboard \
        --out docs/screenshots/metrics.png

Starts authsocket (daphne, fresh SQLite database, a metrics token), drives a
mixed load for `--seconds` (handshakes, refused handshakes, pings, publishes
to a room with subscribers, logouts that close sockets 4403), scrapes
`GET /metrics` every second, and plots the panels of
deploy/grafana/authsocket.json from the scraped series with matplotlib. It is
not a Grafana screenshot: the same queries, computed here from the samples.
"""

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

import websockets
from prometheus_client.parser import text_string_to_metric_families

from bench.servers import AUTHSOCKET, Deployment, Server

ORIGIN = "http://127.0.0.1"
WINDOW_S = 5  # the rate()/histogram_quantile() window of the drawn panels


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--out", default="docs/screenshots/metrics.png")
    parser.add_argument("--python", default=None, help="runs daphne")
    return parser.parse_args()


# --- scraping ------------------------------------------------------------------


def scrape(port: int, token: str) -> dict[tuple, float]:
    """One scrape: {(name, sorted labels): value}."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def scraper(port: int, token: str, series: list, stop: asyncio.Event):
    started = time.monotonic()
    while not stop.is_set():
        samples = await asyncio.to_thread(scrape, port, token)
        series.append((time.monotonic() - started, samples))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


# --- load ----------------------------------------------------------------------


def http(port: int, method: str, path: str, bearer: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method, data=b"{}"
    )
    request.add_header("Authorization", f"Bearer {bearer}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def welcomed(port: int, token: str):
    socket = await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/?token={token}", origin=ORIGIN, open_timeout=10
    )
    await asyncio.wait_for(socket.recv(), 10)
    return socket


async def drain(socket):
    try:
        async for _ in socket:
            pass
    except websockets.ConnectionClosed:
        pass


async def handshakes(port, tokens, stop):
    """Open → welcome → close, plus a refused handshake now and then."""
    i = 0
    while not stop.is_set():
        i += 1
        if i % 5 == 0:
            with contextlib.suppress(websockets.InvalidStatus):
                await websockets.connect(
                    f"ws://127.0.0.1:{port}/ws/?token=forged.{i}", open_timeout=10
                )
            continue
        socket = await welcomed(port, tokens[i % len(tokens)])
        await socket.close()
        await asyncio.sleep(0.02)


async def room_traffic(port, tokens, stop):
    """Subscribers on room:lobby, one member publishing, everyone pinging."""
    assert http(port, "POST", "/api/rooms/lobby/membership", tokens[0]) == 204
    sockets = [await welcomed(port, token) for token in tokens[:50]]
    for socket in sockets:
        await socket.send(json.dumps({"type": "subscribe", "stream": "room:lobby"}))
    readers = [asyncio.create_task(drain(s)) for s in sockets]
    n = 0
    while not stop.is_set():
        n += 1
        frame = {"type": "publish", "stream": "room:lobby", "data": {"n": n}}
        await sockets[0].send(json.dumps(frame))
        await sockets[n % len(sockets)].send(json.dumps({"type": "ping"}))
        await asyncio.sleep(0.1)
    for socket in sockets:
        await socket.close()
    await asyncio.gather(*readers)


async def revocations(port, tokens, stop):
    """A session logged out every two seconds while its socket is open (4403)."""
    for token in tokens:
        if stop.is_set():
            return
        socket = await welcomed(port, token)
        await asyncio.to_thread(http, port, "POST", "/api/auth/logout", token)
        await asyncio.wait_for(drain(socket), 10)
        await asyncio.sleep(2)


async def guesses(port, stop):
    """Wrong passwords for one user, twice a second: the login throttle answers."""
    body = json.dumps({"username": "alice", "password": "wrong"}).encode()
    while not stop.is_set():
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/auth/login", method="POST", data=body
        )
        request.add_header("Content-Type", "application/json")
        with contextlib.suppress(urllib.error.HTTPError):
            await asyncio.to_thread(urllib.request.urlopen, request, timeout=10)
        await asyncio.sleep(0.5)


async def drive(port, token, bench_tokens, rev_tokens, seconds) -> list:
    series, stop = [], asyncio.Event()
    scraping = asyncio.create_task(scraper(port, token, series, stop))
    await asyncio.sleep(3)  # a flat start, so the load's step shows
    load = [
        asyncio.create_task(handshakes(port, bench_tokens[50:], stop)),
        asyncio.create_task(room_traffic(port, bench_tokens, stop)),
        asyncio.create_task(revocations(port, rev_tokens, stop)),
        asyncio.create_task(guesses(port, stop)),
    ]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*load)
    await scraping
    return series


# --- the panels ------------------------------------------------------------------


def by_label(series, name: str, label: str | None) -> dict[str, list]:
    """{label value: [(t, value)]}, summing the samples of `name` per label."""
    lines = defaultdict(list)
    for t, samples in series:
        sums = defaultdict(float)
        for (sample_name, labels), value in samples.items():
            if sample_name == name:
                sums[dict(labels).get(label, name) if label else name] += value
        for key, value in sums.items():
            lines[key].append((t, value))
    return lines


def rate(points: list) -> list:
    """Per-second increase over the last WINDOW_S seconds, like rate()."""
    out = []
    for i, (t, value) in enumerate(points):
        j = max(0, i - WINDOW_S)
        t0, v0 = points[j]
        out.append((t, (value - v0) / (t - t0) if t > t0 else 0.0))
    return out


def quantile(series, name: str, q: float) -> list:
    """histogram_quantile(q, sum by (le) (rate(name_bucket[WINDOW_S])))."""
    buckets = defaultdict(dict)  # t → {le: cumulative count}
    for t, samples in series:
        for (sample_name, labels), value in samples.items():
            if sample_name == f"{name}_bucket":
                le = float(dict(labels)["le"])
                buckets[t][le] = buckets[t].get(le, 0.0) + value
    times = sorted(buckets)
    out = []
    for i, t in enumerate(times):
        before = buckets[times[max(0, i - WINDOW_S)]]
        delta = sorted((le, c - before.get(le, 0.0)) for le, c in buckets[t].items())
        total = delta[-1][1] if delta else 0
        if total <= 0:
            continue
        lower, below = 0.0, 0.0
        for le, count in delta:
            if count >= q * total:
                if le == float("inf"):
                    out.append((t, lower))
                else:  # linear inside the bucket, as Prometheus does
                    share = (q * total - below) / max(count - below, 1e-9)
                    out.append((t, lower + (le - lower) * share))
                break
            lower, below = le, count
    return out


def draw(series, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(20, 8.5))
    fig.suptitle(
        "authsocket — panels of deploy/grafana/authsocket.json, drawn from "
        f"/metrics scraped every 1 s during a {series[-1][0]:.0f} s load "
        f"(rates and quantiles over {WINDOW_S} s)",
        fontsize=12,
    )

    def plot(ax, lines: dict, title: str, unit: str, transform=None):
        for key, points in sorted(lines.items()):
            points = transform(points) if transform else points
            if points:
                ax.plot(*zip(*points, strict=True), label=key)
        ax.set_title(title)
        ax.set_ylabel(unit)
        ax.set_xlabel("s")
        ax.grid(alpha=0.3)
        if lines:
            ax.legend(fontsize=8)

    plot(
        axes[0][0],
        by_label(series, "authsocket_open_sockets", None),
        "Open sockets",
        "sockets",
    )
    handshake = defaultdict(list)
    for t, samples in series:
        sums = defaultdict(float)
        for (name, labels), value in samples.items():
            if name == "authsocket_handshakes_total":
                labels = dict(labels)
                reason = "" if labels["reason"] == "none" else labels["reason"]
                sums[f"{labels['outcome']} {reason}".strip()] += value
        for key, value in sums.items():
            handshake[key].append((t, value))
    plot(axes[0][1], handshake, "Handshakes by outcome, reason", "per s", rate)
    plot(
        axes[0][2],
        by_label(series, "authsocket_close_codes_total", "code"),
        "Close codes sent",
        "per s",
        rate,
    )
    fanout = {
        f"p{int(q * 100)}": quantile(series, "authsocket_fanout_delay_seconds", q)
        for q in (0.5, 0.99)
    }
    plot(
        axes[0][3],
        {k: [(t, v * 1000) for t, v in p] for k, p in fanout.items()},
        "Fan-out delay (stored → sent)",
        "ms",
    )
    revocation = {
        "p99": quantile(series, "authsocket_revocation_close_delay_seconds", 0.99)
    }
    plot(
        axes[1][0],
        {k: [(t, v * 1000) for t, v in p] for k, p in revocation.items()},
        "Revocation commit → close 4403",
        "ms",
    )
    poll = {
        "age of last poll (s)": by_label(
            series, "authsocket_revocation_poll_age_seconds", None
        )["authsocket_revocation_poll_age_seconds"],
        "poll duration p99 (s)": quantile(
            series, "authsocket_revocation_poll_duration_seconds", 0.99
        ),
    }
    plot(axes[1][1], poll, "Revocation poll lag", "s")
    messages = {
        "published": by_label(series, "authsocket_messages_published_total", None)[
            "authsocket_messages_published_total"
        ],
        "delivered": by_label(series, "authsocket_messages_delivered_total", None)[
            "authsocket_messages_delivered_total"
        ],
    }
    plot(axes[1][2], messages, "Messages published / delivered", "per s", rate)
    errors = {}
    for name in (
        "authsocket_channel_layer_errors_total",
        "authsocket_database_errors_total",
        "authsocket_throttled_total",
    ):
        short = name.removeprefix("authsocket_").removesuffix("_total")
        # A labelled counter has no series before its first event: zero.
        zeros = [(t, 0.0) for t, _ in series]
        errors[short] = by_label(series, name, None).get(name, zeros)
    plot(axes[1][3], errors, "Errors and throttling", "per s", rate)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)


def main():
    args = parse_args()
    token = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory() as workdir:
        python = args.python or sys.executable
        deployment = Deployment.create(AUTHSOCKET, Path(workdir), python)
        deployment.manage("migrate", "--no-input", "-v", "0")
        deployment.manage("demo_data")
        bench_tokens = deployment.mint("bench", 300, 3600).read_text().split()
        rev_tokens = deployment.mint("rev", 60, 3600).read_text().split()
        server = Server(
            deployment,
            "metrics",
            extra_env={
                "AUTHSOCKET_METRICS_TOKEN": token,
                "AUTHSOCKET_LOGIN_THROTTLE": "10/min",  # not the bench's raised one
            },
        ).start()
        try:
            series = asyncio.run(
                drive(server.port, token, bench_tokens, rev_tokens, args.seconds)
            )
        finally:
            server.stop()
    draw(series, Path(args.out))
    last = series[-1][1]
    print(f"{len(series)} scrapes, {len(last)} samples in the last one → {args.out}")


if __name__ == "__main__":
    main()
