"""Scale scenarios of issue 21, each a coroutine returning a flat dict.

Curves, not points: the same process is measured with 0, 100, 1,000, 5,000
and 10,000 authenticated idle sockets open (one user each), all held by this
one load-generator process. Every wait is bounded.
"""

import asyncio
import json
import os
import re
import resource
import statistics
from pathlib import Path

from bench.client import (
    FRAME_TIMEOUT_S,
    Target,
    abort_all,
    api_client,
    api_failure,
    http_exchange,
    http_request,
    now,
    open_welcomed,
)
from bench.presence_scenarios import redis_commands
from bench.scenarios import (
    RevocationTimes,
    handshake,
    measure_publishes,
    not_available,
    open_many,
    ping_all,
    recv_type,
    revocation,
    rss_kib,
    run_pool,
)

TRIM_PATH, GC_PATH = "/bench/malloc-trim", "/bench/gc"  # bench/scale_app.py
OPEN_CONCURRENCY = 100
# Subscribes in flight at once: each reads the stream's position in the
# database on the process's one ORM thread, so 10,000 sent at once would
# wait there longer than a frame's timeout.
SUBSCRIBE_CONCURRENCY = 100
IDLE_WINDOW_S = 2.0  # server CPU read over this long with nothing sent
CLOSED_SLACK_FDS = 16  # descriptors a settled process may hold beyond its start
OPEN_SOCKETS = re.compile(rb"^authsocket_open_sockets\s+([0-9.e+]+)\s*$", re.M)


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def read_tokens(path: str) -> list[str]:
    return [line.strip() for line in Path(path).read_text().split() if line.strip()]


async def handshake_rate(target, tokens, server_pid, batch: dict) -> dict:
    """`rounds` batches of handshakes: median rate, CPU ms and p50/p99 of each.

    The median of a few batches moves less than one batch does when
    something else takes the cores for a moment.
    """
    rounds = []
    for _ in range(batch["rounds"]):
        cpu, gc_before = server_cpu_s(server_pid), await gc_pauses(target)
        result = await handshake(
            target,
            tokens,
            transport="token",
            count=batch["count"],
            concurrency=batch["concurrency"],
        )
        used = server_cpu_s(server_pid) - cpu
        gc_after = await gc_pauses(target)
        ok = max(result["ok"], 1)
        result["server_cpu_ms_per_op"] = used * 1000 / ok
        if gc_before and gc_after:
            result["gc_ms_per_op"] = (
                (sum(gc_after["seconds"]) - sum(gc_before["seconds"])) * 1000 / ok
            )
            result["full_collections"] = (
                gc_after["collections"][2] - gc_before["collections"][2]
            )
        rounds.append(result)
    median = lambda key: statistics.median(r.get(key, 0) for r in rounds)  # noqa: E731
    return {
        "connections_per_s": round(median("connections_per_s"), 1),
        "server_cpu_ms_per_handshake": round(median("server_cpu_ms_per_op"), 3),
        "gc_ms_per_handshake": round(median("gc_ms_per_op"), 3),
        "full_collections_per_batch": median("full_collections"),
        "handshake_p50_ms": round(median("p50_ms"), 2),
        "handshake_p99_ms": round(median("p99_ms"), 2),
        "handshake_errors": sum(r["errors"] for r in rounds),
        "rates": [r["connections_per_s"] for r in rounds],
    }


async def subscribe_pool(sockets, stream: str) -> float:
    """Subscribes every socket, SUBSCRIBE_CONCURRENCY at a time; subscribes/s."""
    frame = json.dumps({"type": "subscribe", "stream": stream})

    async def one(i):
        await sockets[i].send(frame)
        await recv_type(sockets[i], "subscribed")

    wall = await run_pool(len(sockets), SUBSCRIBE_CONCURRENCY, one)
    return round(len(sockets) / wall, 1) if wall else 0.0


async def gc_pauses(target) -> dict | None:
    """The server's collections and their time so far (bench/scale_app.py)."""
    status, body = await http_request(target, "GET", GC_PATH)
    return body if status == 200 else None


async def hold(target, tokens, held: list, level: int) -> list:
    """Opens sockets until `level` are held; returns the new ones, settled."""
    new = await open_many(target, tokens[len(held) : level], level - len(held), 100)
    await ping_all(new)  # the server has accepted and answered every one
    held += new
    return new


async def scale_curve(
    target,
    tokens,
    *,
    levels,
    batch,
    server_pid,
    revocation_tokens_file,
    revocation_samples,
) -> dict:
    """Handshakes/s and RSS per socket at each level, then revocation among
    the most, then the memory left once they all close.

    `tokens`: one user per held socket, then the batch's users. The batch runs
    once with nothing open (the reference), then at each level.
    """
    top = max(levels)
    idle_tokens, batch_tokens = tokens[:top], tokens[top:]
    warm = await open_many(target, batch_tokens, batch["concurrency"], 50)
    await ping_all(warm)
    await abort_all(warm)
    await handshake_rate(target, batch_tokens, server_pid, batch | {"rounds": 1})
    fds_before, rss_before = fd_count(server_pid), rss_kib(server_pid)
    points = [
        {"sockets": 0, "rss_kib": rss_before}
        | await handshake_rate(target, batch_tokens, server_pid, batch)
    ]
    held = []
    try:
        for level in levels:
            await hold(target, idle_tokens, held, level)
            rss = rss_kib(server_pid)
            point = {
                "sockets": level,
                "rss_kib": rss,
                "kib_per_socket": round((rss - rss_before) / level, 2),
                "server_fds": fd_count(server_pid),
                "idle_cpu_share": await idle_cpu_share(server_pid),
            }
            points.append(
                point | await handshake_rate(target, batch_tokens, server_pid, batch)
            )
        revoked = await revocation(
            target, read_tokens(revocation_tokens_file), samples=revocation_samples
        )
    finally:
        await abort_all(held)
    after = await memory_after_close(target, server_pid, fds_before)
    # The reference again, now that every socket is gone: when the two
    # references differ, the machine's load moved during the curve.
    again = await handshake_rate(target, batch_tokens, server_pid, batch)
    return {
        "levels": list(levels),
        "points": points,
        "handshake_ratio_at_top": round(
            points[-1]["connections_per_s"] / points[0]["connections_per_s"], 3
        ),
        "cpu_ratio_at_top": round(
            points[0]["server_cpu_ms_per_handshake"]
            / points[-1]["server_cpu_ms_per_handshake"],
            3,
        ),
        "kib_per_socket_at_top": points[-1]["kib_per_socket"],
        "after_close": again,
        "revocation_among": top,
        **{f"revocation_{k}": v for k, v in revoked.items()},
        "rss_before_kib": rss_before,
        **after,
    }


async def idle_cpu_share(server_pid: int) -> float:
    """The share of a core the server uses while its sockets say nothing.

    daphne walks every connection on timers of its own (application checks,
    ping and timeout bookkeeping), so holding sockets costs CPU by itself.
    """
    cpu = server_cpu_s(server_pid)
    await asyncio.sleep(IDLE_WINDOW_S)  # the quiet itself is what is measured
    return round((server_cpu_s(server_pid) - cpu) / IDLE_WINDOW_S, 3)


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def memory_after_close(target, server_pid: int, fds_before: int) -> dict:
    """RSS once the server has let go of every socket, then after a full
    collection and `malloc_trim(0)` in the server (bench/scale_app.py)."""
    deadline = now() + 2 * FRAME_TIMEOUT_S
    while fd_count(server_pid) > fds_before + CLOSED_SLACK_FDS and now() < deadline:
        await asyncio.sleep(0.1)  # another process: nothing to await but /proc
    out = {
        "rss_high_water_kib": high_water_kib(server_pid),
        "rss_after_close_kib": rss_kib(server_pid),
        "server_fds_after_close": fd_count(server_pid),
    }
    status, body = await http_request(target, "POST", TRIM_PATH)
    if status == 200 and body:
        out |= {
            "rss_after_gc_kib": body["rss_after_gc_kib"],
            "rss_after_trim_kib": body["rss_after_trim_kib"],
        }
    return out


def high_water_kib(pid: int) -> int:
    """VmHWM: the most resident memory the process ever had, KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


async def redis_calls(redis_url: str | None) -> int:
    """Commands the bench's own Redis has run so far (0 without one)."""
    if not redis_url:
        return 0
    return sum((await redis_commands(redis_url)).values())


async def scale_fanout(
    target, tokens, *, levels, publishes, room, server_pid, redis_url=None
) -> dict:
    """One publish to a room with N subscribers, at each level N in turn.

    `tokens[0]` publishes (a member of the room, not subscribed); the others
    subscribe, the held sockets of a level staying on for the next. With
    `redis_url` (a Redis of this case's own) the commands each handshake,
    subscribe and publish costs are counted too (INFO commandstats; the
    heartbeats of the same seconds are counted in, a few a second).
    """
    stream = f"room:{room}"
    async with api_client(target, tokens[0]) as api:
        failed = await api_failure(api, "POST", f"/api/rooms/{room}/membership")
    if failed is not None:
        return not_available(f"POST /api/rooms/{room}/membership answers {failed}")
    publisher = await open_many(target, tokens, 1, 1)
    rss_before, held, points = rss_kib(server_pid), [], []
    try:
        for level in levels:
            calls = [await redis_calls(redis_url)]
            new = await hold(target, tokens[1:], held, level)
            calls.append(await redis_calls(redis_url))
            rate = await subscribe_pool(new, stream)
            calls.append(await redis_calls(redis_url))
            rss = rss_kib(server_pid)
            cpu, own, start = server_cpu_s(server_pid), own_cpu_s(), now()
            found = await measure_publishes(publisher[0], held, stream, publishes)
            wall = now() - start
            calls.append(await redis_calls(redis_url))
            deliveries = max(level * publishes, 1)
            if redis_url:  # each INFO is one command too
                found |= {
                    "redis_cmds_per_handshake": round(
                        (calls[1] - calls[0] - 1) / len(new), 2
                    ),
                    "redis_cmds_per_subscribe": round(
                        (calls[2] - calls[1] - 1) / len(new), 2
                    ),
                    "redis_cmds_per_publish": round(
                        (calls[3] - calls[2] - 1) / publishes, 1
                    ),
                }
            points.append(
                found
                | {
                    "sockets": level,
                    "server_cpu_us_per_delivery": round(
                        (server_cpu_s(server_pid) - cpu) * 1e6 / deliveries, 1
                    ),
                    "loadgen_cpu_share": round((own_cpu_s() - own) / wall, 3),
                    "subscribes_per_s": rate,
                    "kib_per_subscribed_socket": round((rss - rss_before) / level, 2),
                }
            )
    finally:
        await abort_all([*publisher, *held])
    return {
        "levels": list(levels),
        "points": points,
        "subscribers": points[-1]["subscribers"],
        **{
            k: points[-1][k] for k in points[-1] if k.startswith(("last_", "delivery_"))
        },
        "missing_deliveries": sum(p["missing_deliveries"] for p in points),
    }


async def open_sockets_gauge(http_url: str, metrics_token: str) -> float | None:
    """One process's `authsocket_open_sockets` from its /metrics (docs/metrics.md)."""
    target = Target(http_url.replace("http://", "ws://") + "/ws/")
    host, port = target.host_port
    request = (
        f"GET /metrics HTTP/1.0\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {metrics_token}\r\n\r\n"
    ).encode()
    raw = await http_exchange(target, request, FRAME_TIMEOUT_S)
    found = OPEN_SOCKETS.search(raw)
    return float(found.group(1)) if found else None


async def scale_cluster(
    target,
    tokens,
    *,
    sockets,
    publishes,
    room,
    process_urls,
    metrics_token_file,
    revocation_tokens_file,
    revocation_samples,
) -> dict:
    """N sockets through nginx to 3 processes: how they spread, one publish
    reaching all, and revocation from one process to another.

    Each revocation sample opens its socket on process k directly and logs
    out on process k+1, so every sample crosses processes (through Redis).
    """
    stream = f"room:{room}"
    async with api_client(target, tokens[0]) as api:
        failed = await api_failure(api, "POST", f"/api/rooms/{room}/membership")
    if failed is not None:
        return not_available(f"POST /api/rooms/{room}/membership answers {failed}")
    started = now()
    held = await open_many(target, tokens, sockets + 1, OPEN_CONCURRENCY)
    opened_s = now() - started
    publisher, subs = held[0], held[1:]
    try:
        token = Path(metrics_token_file).read_text().strip()
        spread = [await open_sockets_gauge(url, token) for url in process_urls]
        subscribes_per_s = await subscribe_pool(subs, stream)
        fanned = await measure_publishes(publisher, subs, stream, publishes)
        revoked = await cross_revocation(
            process_urls, read_tokens(revocation_tokens_file), revocation_samples
        )
    finally:
        await abort_all(held)
    return {
        "processes": len(process_urls),
        "sockets": sockets,
        "open_per_s": round((sockets + 1) / opened_s, 1),
        "spread": spread,
        "subscribes_per_s": subscribes_per_s,
        "spread_min_share": round(min(spread) / max(sum(spread), 1), 3)
        if None not in spread
        else None,
        **fanned,
        **{f"revocation_{k}": v for k, v in revoked.items()},
    }


async def cross_revocation(process_urls, tokens, samples: int) -> dict:
    """logout → 4403 with the socket on process k and the logout on k+1.

    Timed like `bench.scenarios.revocation` (`RevocationTimes`).
    """
    targets = [Target(url.replace("http://", "ws://") + "/ws/") for url in process_urls]
    times = RevocationTimes()
    for i, token in enumerate(tokens[:samples]):
        k = i % len(targets)
        socket_at = Target(targets[k].ws_url, "http://127.0.0.1")
        ws = await open_welcomed(socket_at, token)
        async with api_client(targets[(k + 1) % len(targets)], token) as api:
            failed, start, answered = await times.logout(api)
        await times.closed(ws, failed, start, answered)
    return times.summary()


SCENARIOS = {
    "scale_curve": scale_curve,
    "scale_fanout": scale_fanout,
    "scale_cluster": scale_cluster,
}
