"""Presence scenarios of issue 16, each a coroutine returning a flat dict.

Streams: `benchp:<key>` (presence) and `benchn:<key>` (none) of
bench/presence_app, alike otherwise, for "on vs off"; `room:lobby` for the
delivery delay and the rolling restart. Every wait is bounded.
"""

import asyncio
import contextlib
import json
import os
import secrets
import signal
from dataclasses import dataclass

from bench.client import (
    FRAME_TIMEOUT_S,
    abort_all,
    latency_summary,
    now,
    open_welcomed,
    recv_type,
    ws_open,
)
from bench.scenarios import open_many, run_pool, subscribe_all

JOIN, LEAVE = "presence.join", "presence.leave"
QUIET_S = 2.0  # docs/protocol.md §4.4: a join or leave arrives within 1 s
# Before the first probe of `presence_delay`: at most this long for the room's
# own joins and snapshots to be delivered (a slow machine took over 10 s).
SETTLE_S = 60.0


def subscribe_frame(stream: str, presence: bool) -> str:
    frame = {"type": "subscribe", "stream": stream}
    if presence:
        frame["presence"] = True
    return json.dumps(frame)


async def subscribe(ws, stream: str, presence: bool) -> dict | None:
    """Subscribes and waits for `subscribed` (and the snapshot, if asked).

    Returns the snapshot frame (None without presence).
    """
    await ws.send(subscribe_frame(stream, presence))
    await recv_type(ws, "subscribed")
    if not presence:
        return None
    return await recv_type(ws, "presence")


async def unsubscribe(ws, stream: str) -> None:
    await ws.send(json.dumps({"type": "unsubscribe", "stream": stream}))
    await recv_type(ws, "unsubscribed")


class Watcher:
    """Reads every frame of one socket: arrival times of markers and presence."""

    def __init__(self, ws, snapshot: dict | None = None):
        """`snapshot`: the one `subscribe` already read, before this reader ran."""
        self.ws = ws
        self.markers: dict[str, float] = {}
        self.presence: list[tuple[str, int, float]] = []  # (type, user id, time)
        self.view: set[int] = set()  # who is there, as the frames tell it
        self.count = 0  # how many are there, as the frames tell it
        self.truncated = False  # the view comes from a snapshot cut at its limit
        self.snapshots: list[tuple[set[int], float]] = []  # unprompted ones
        self.counts: dict[str, int] = {}
        if snapshot is not None:
            self.replace(snapshot)
        self.task = asyncio.create_task(self.read())

    async def read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                frame, at = json.loads(raw), now()
                kind = frame.get("type")
                self.counts[kind] = self.counts.get(kind, 0) + 1
                if kind == "message":
                    self.markers[frame["data"].get("bench")] = at
                elif kind in (JOIN, LEAVE):
                    self.presence.append((kind, frame["user"]["id"], at))
                    self.told(kind, frame["user"]["id"])
                elif kind == "presence":
                    self.replace(frame)
                    self.snapshots.append((self.view, at))

    def replace(self, snapshot: dict) -> None:
        """A snapshot replaces the view."""
        self.view = {user["id"] for user in snapshot["users"]}
        self.count = snapshot["count"]
        self.truncated = snapshot.get("truncated", False)

    def last_frame_at(self) -> float:
        """When the newest presence frame arrived: a change or a snapshot (0: none)."""
        changes = self.presence[-1][2] if self.presence else 0.0
        return max(changes, self.snapshots[-1][1] if self.snapshots else 0.0)

    def told(self, kind: str, user_id: int) -> None:
        if kind == JOIN:
            self.view.add(user_id)
            self.count += 1
        else:
            self.view.discard(user_id)
            self.count -= 1

    def right(self, users: int) -> bool:
        """The view holds `users` users: all of them listed, or, after a
        snapshot cut at its limit (docs/protocol.md §4.4), counted."""
        return self.count == users and (len(self.view) == users or self.truncated)

    async def until(self, check, timeout: float = FRAME_TIMEOUT_S) -> bool:
        """Polls this reader's state until `check()`; False on timeout."""
        deadline = now() + timeout
        while not check():
            if now() > deadline:
                return False
            await asyncio.sleep(0.005)  # state filled by another task
        return True


@dataclass(frozen=True)
class ChurnPlan:
    """The churn of `presence_churn` and `presence_churn_ab` (see there)."""

    watchers: int
    churners: int
    cycles: int
    duration: float
    interval: float
    rate: float = 0  # subscribes a second in all; 0: as fast as possible
    server_pid: int | None = None  # the server's CPU is read when known


class ChurnSide:
    """One stream of a churn case: its watchers, and what its churn measured."""

    def __init__(self, stream: str, watchers_ask: bool, churners_ask: bool):
        self.stream = stream
        self.watchers_ask, self.churners_ask = watchers_ask, churners_ask
        self.readers: list[Watcher] = []
        self.subscribes: list[float] = []  # seconds from subscribe to answer
        self.sent: dict[str, float] = {}  # marker → when it was published
        self.wall = 0.0  # seconds of churn
        self.server_cpu = 0.0  # seconds, when the server's pid is known
        self.errors: list[str] = []

    async def watch(self, socks) -> None:
        await asyncio.gather(
            *(subscribe(ws, self.stream, self.watchers_ask) for ws in socks)
        )
        self.readers = [Watcher(ws) for ws in socks]

    async def churn(self, target, publisher, pool, users, plan: "ChurnPlan", seconds):
        """`plan.churners` workers churn and a marker goes out every
        `plan.interval` s for `seconds`; then every marker is awaited."""
        deadline, rate = now() + seconds, plan.rate
        cpu = server_cpu(plan.server_pid)

        async def churner(index: int):
            # Paced, the churners take turns (one every 1/rate s), not in step.
            step = plan.churners / rate if rate else 0.0
            next_at = now() + index * step / plan.churners
            await pause_until(next_at, deadline)
            while now() < deadline:
                try:
                    ws = await open_welcomed(target, pool[next(users) % len(pool)])
                    for _ in range(plan.cycles):
                        start = now()
                        await subscribe(ws, self.stream, self.churners_ask)
                        self.subscribes.append(now() - start)
                        await unsubscribe(ws, self.stream)
                        next_at += step
                        await pause_until(next_at, deadline)
                        if now() >= deadline:
                            break
                    await ws.close()
                except Exception as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}"[:200])

        async def publish():
            while now() < deadline:
                marker = secrets.token_hex(6)
                data = {"bench": marker}
                frame = {"type": "publish", "stream": self.stream, "data": data}
                self.sent[marker] = now()
                await publisher.send(json.dumps(frame))
                await asyncio.sleep(plan.interval)

        start = now()
        churners = (churner(i) for i in range(plan.churners))
        await asyncio.gather(publish(), *churners)
        self.wall += now() - start
        await asyncio.gather(
            *(
                r.until(lambda r=r: len(r.markers) >= len(self.sent))
                for r in self.readers
            )
        )
        if cpu is not None:
            self.server_cpu += server_cpu(plan.server_pid) - cpu

    def forget(self) -> None:
        """Drop what a warm-up recorded (`churn` awaited all its markers);
        errors stay, so that a failing warm-up still shows."""
        self.subscribes.clear()
        self.sent.clear()
        self.wall = self.server_cpu = 0.0
        for reader in self.readers:
            reader.markers.clear()
            reader.presence.clear()

    def result(self) -> dict:
        delays, last, missing = [], [], 0
        for marker, at in self.sent.items():
            got = [r.markers[marker] - at for r in self.readers if marker in r.markers]
            missing += len(self.readers) - len(got)
            delays += got
            last += [max(got)] if got else []
        frames = sum(len(r.presence) for r in self.readers)
        result = {
            "watchers_ask": self.watchers_ask,
            "churners_ask": self.churners_ask,
            "subscribes_per_s": round(len(self.subscribes) / max(self.wall, 1e-9), 1),
            "subscribes": len(self.subscribes),
            **latency_summary(self.subscribes, "subscribe_"),
            **latency_summary(delays, "delivery_"),
            **latency_summary(last, "last_"),
            "missing_deliveries": missing,
            "presence_frames_per_watcher": round(frames / max(len(self.readers), 1), 1),
            "errors": len(self.errors),
            "error_samples": self.errors[:3],
        }
        if self.server_cpu and self.subscribes:
            result["server_cpu_s"] = round(self.server_cpu, 3)
            result["server_cpu_ms_per_op"] = round(
                self.server_cpu * 1000 / len(self.subscribes), 4
            )
        return result


async def pause_until(moment: float, deadline: float) -> None:
    """The pacing: sleep until `moment`, never past `deadline`."""
    await asyncio.sleep(max(0.0, min(moment, deadline) - now()))


def server_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of the server process (same machine), or None."""
    if pid is None:
        return None
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def presence_churn(
    target, tokens, *, presence, watchers_ask=None, churners_ask=None, **churn
) -> dict:
    """Subscribes/s and fan-out delay while sockets churn, presence on or off.

    `watchers` sockets sit on the stream (asking for presence when it is on);
    `churners` workers each open a socket, subscribe and unsubscribe it
    `cycles` times, close it and start again with the next user; a publisher
    sends a marker every `interval` s and its delay to every watcher counts.
    `rate` > 0 paces the churn to that many subscribes a second in all (the
    fan-out delay at a load both can carry); 0 churns as fast as it can.
    With presence, `watchers_ask` and `churners_ask` (both True by default)
    say who asks for it: with neither, the kind keeps presence and every
    socket is counted, but nobody is told.
    """
    stream = f"{'benchp' if presence else 'benchn'}:churn-{secrets.token_hex(3)}"
    side = ChurnSide(
        stream,
        presence if watchers_ask is None else presence and watchers_ask,
        presence if churners_ask is None else presence and churners_ask,
    )
    plan = ChurnPlan(**churn)
    publisher = await open_welcomed(target, tokens[0])
    socks = await open_many(target, tokens[1:], plan.watchers, 50)
    await side.watch(socks)
    pool, users = tokens[plan.watchers + 1 :], iter(range(10**9))
    await side.churn(target, publisher, pool, users, plan, plan.duration)
    await abort_all([publisher, *socks])
    return {"presence": presence, "paced_rate": plan.rate, **side.result()}


async def presence_churn_ab(
    target,
    tokens,
    *,
    segments=5,
    on_first=True,
    churners_ask=True,
    warmup=2.0,
    **churn,
) -> dict:
    """`presence_churn` on and off on ONE server, in alternating segments.

    Run one after the other on two servers, the two sides met different
    machines: on a shared 2-core VM the same case's fan-out p99 moved from
    43 to 83 ms between runs, more than presence costs. Here `watchers`
    sockets watch a stream that keeps presence (asking for it) and as many a
    stream that does not; the churn alternates between them in `segments`
    slices each of `duration` / `segments` s, every marker awaited before the
    next slice, the order turned round every segment (on, off, off, on, …),
    so slow drift hits both sides alike. Each side first churns `warmup` s
    unrecorded: the server is fresh, and its first seconds of churn (code
    paths, caches, the heap growing to the load) cost more than the next
    ones, which counted against whichever side went first. The server's CPU is
    read per slice (`server_pid`). `churners_ask=False`: the churners do not
    ask for presence (they are counted, get no snapshot): what presence
    costs a stream apart from the snapshots its subscribers ask for.
    Returns `{"split": {"on": …, "off": …}}`.
    """
    tag = secrets.token_hex(3)
    sides = {
        "on": ChurnSide(f"benchp:ab-{tag}", True, churners_ask),
        "off": ChurnSide(f"benchn:ab-{tag}", False, False),
    }
    plan = ChurnPlan(**churn)
    watchers = plan.watchers
    publisher = await open_welcomed(target, tokens[0])
    socks = await open_many(target, tokens[1:], 2 * watchers, 50)
    await sides["on"].watch(socks[:watchers])
    await sides["off"].watch(socks[watchers:])
    pool, users = tokens[2 * watchers + 1 :], iter(range(10**9))
    order = ("on", "off") if on_first else ("off", "on")
    for mode in order:
        await sides[mode].churn(target, publisher, pool, users, plan, warmup)
        sides[mode].forget()
    for segment in range(segments):
        for mode in order if segment % 2 == 0 else order[::-1]:
            await sides[mode].churn(
                target, publisher, pool, users, plan, plan.duration / segments
            )
    await abort_all([publisher, *socks])
    return {
        "split": {
            mode: {"presence": mode == "on", "paced_rate": plan.rate, **side.result()}
            for mode, side in sides.items()
        }
    }


async def presence_delay(target, tokens, *, subscribers, probes, room) -> dict:
    """Delay of a `presence.join` / `presence.leave` to every subscriber of a room.

    `subscribers` sockets watch `room:<room>` with presence; once the room
    is quiet (their own joins and snapshots delivered), `probes` other
    users, one at a time, subscribe and unsubscribe: each change's delay
    from the probe's frame to each watcher, and to the last one.
    """
    stream = f"room:{room}"
    socks = await open_many(target, tokens[probes:], subscribers, 100)
    try:
        await asyncio.gather(*(subscribe(ws, stream, True) for ws in socks))
        readers = [Watcher(ws) for ws in socks]
        await quiet(readers, SETTLE_S)
        found = {JOIN: ([], []), LEAVE: ([], [])}
        missed: dict[str, int] = {}  # "<probe index> <kind>" → subscribers

        async def told(index, kind, user, start):
            if missing := await collect(readers, kind, user, start, *found[kind]):
                missed[f"{index} {kind}"] = missing

        for index, token in enumerate(tokens[:probes]):
            probe, user = await open_probe(target, token)
            start = now()
            await subscribe(probe, stream, False)
            await told(index, JOIN, user, start)
            start = now()
            await unsubscribe(probe, stream)
            await told(index, LEAVE, user, start)
            await probe.close()
    finally:
        await abort_all(socks)
    return {
        "subscribers": subscribers,
        "probes": probes,
        "missing_deliveries": sum(missed.values()),
        "missed_by_probe": missed,  # which probe's change passed the deadline
        **latency_summary(found[JOIN][0], "join_"),
        **latency_summary(found[JOIN][1], "join_last_"),
        "join_last_each_ms": [round(t * 1000, 1) for t in found[JOIN][1]],
        **latency_summary(found[LEAVE][0], "leave_"),
        **latency_summary(found[LEAVE][1], "leave_last_"),
    }


async def open_probe(target, token):
    """A socket and its user id, read from `welcome` (docs/protocol.md §4.2)."""
    ws = await ws_open(target, token, "token")
    welcome = await recv_type(ws, "welcome")
    return ws, welcome["user"]["id"]


async def collect(readers, kind, user, start, every: list, last: list) -> int:
    """Waits for `kind` of `user` at every reader; returns how many missed it.

    A fresh snapshot that already tells it (the server sends one instead of
    many changes) counts as its delivery: the frame itself never comes.
    """
    present = kind == JOIN

    def seen(reader):
        told = [t for k, u, t in reader.presence if k == kind and u == user]
        told += [t for ids, t in reader.snapshots if (user in ids) is present]
        return min((t for t in told if t >= start), default=None)

    await asyncio.gather(*(r.until(lambda r=r: seen(r) is not None) for r in readers))
    times = [t - start for t in map(seen, readers) if t is not None]
    every += times
    last += [max(times)] if times else []
    return len(readers) - len(times)


async def redis_commands(redis_url: str) -> dict[str, int]:
    """Calls per command since the Redis instance started (INFO commandstats)."""
    import redis.asyncio as redis

    client = redis.from_url(redis_url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}


def delta(after: dict, before: dict) -> dict:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


async def presence_redis(target, tokens, *, sockets, redis_url, idle_s) -> dict:
    """Redis commands per subscribe and per unsubscribe, presence on and off.

    Read as INFO commandstats deltas on a Redis instance of the bench's own;
    the heartbeats counted over `idle_s` idle seconds are subtracted.
    """
    socks = await open_many(target, tokens, sockets, 50)
    out = {}
    try:
        idle_before = await redis_commands(redis_url)
        t0 = now()
        await asyncio.sleep(idle_s)  # nothing to await: the idle rate is the point
        idle = delta(await redis_commands(redis_url), idle_before)
        idle_rate = sum(idle.values()) / (now() - t0)
        for presence in (True, False):
            stream = f"{'benchp' if presence else 'benchn'}:cmd-{secrets.token_hex(3)}"
            for action in ("subscribe", "unsubscribe"):
                before, t0 = await redis_commands(redis_url), now()
                if action == "subscribe":
                    await asyncio.gather(
                        *(subscribe(ws, stream, presence) for ws in socks)
                    )
                else:
                    await asyncio.gather(*(unsubscribe(ws, stream) for ws in socks))
                used = delta(await redis_commands(redis_url), before)
                net = sum(used.values()) - idle_rate * (now() - t0) - 2  # the 2 INFOs
                label = f"{'on' if presence else 'off'}_{action}"
                out[f"redis_cmds_per_{label}"] = round(net / sockets, 2)
                out[f"redis_top_{label}"] = dict(
                    sorted(used.items(), key=lambda kv: -kv[1])[:6]
                )
    finally:
        await abort_all(socks)
    return {"sockets": sockets, "idle_cmds_per_s": round(idle_rate, 1), **out}


async def presence_restart(
    target, tokens, *, sockets, observers, room, other_ws_url, server_pid, deadline
) -> dict:
    """A process holding `sockets` users on a room is stopped (SIGTERM): its
    clients reconnect to the other process and subscribe again. Counts the
    presence frames each observer (on the other process) receives."""
    from bench.client import Target

    other = Target(other_ws_url, target.origin)
    stream = f"room:{room}"
    held = await open_many(target, tokens[observers:], sockets, 100)
    await subscribe_all(held, stream)
    obs = await open_many(other, tokens, observers, 50)
    snapshots = await asyncio.gather(*(subscribe(ws, stream, True) for ws in obs))
    readers = [Watcher(ws, first) for ws, first in zip(obs, snapshots, strict=True)]
    start = now()
    os.kill(server_pid, signal.SIGTERM)
    back = []

    async def come_back(i, ws):
        with contextlib.suppress(Exception):
            await ws.wait_closed()
        ws = await open_welcomed(other, tokens[observers + i], timeout=deadline)
        await subscribe(ws, stream, False)
        back.append(ws)

    await run_pool(sockets, 100, lambda i: come_back(i, held[i]))
    back_s = now() - start
    await quiet(readers, deadline)
    per = [len(r.presence) for r in readers]
    leaves = [sum(k == LEAVE for k, _, _ in r.presence) for r in readers]
    joins = [sum(k == JOIN for k, _, _ in r.presence) for r in readers]
    snapshots = [r.counts.get("presence", 0) for r in readers]  # after the first
    settled = [r.last_frame_at() - start for r in readers if r.last_frame_at()]
    await abort_all([*obs, *back])
    return {
        "sockets": sockets,
        "observers": observers,
        "seconds_until_all_back": round(back_s, 3),
        "presence_frames_per_observer": max(per),
        "min_presence_frames_per_observer": min(per),
        "leaves_per_observer": max(leaves),
        "joins_per_observer": max(joins),
        "unprompted_snapshots": max(snapshots),
        # Every user is back: a right view lists the observers and the held.
        "observers_with_the_true_view": sum(
            r.right(observers + sockets) for r in readers
        ),
        "observers_left_with_a_cut_snapshot": sum(r.truncated for r in readers),
        "seconds_until_last_presence_frame": round(max(settled), 3)
        if settled
        else None,
    }


async def quiet(readers, deadline: float) -> None:
    """Waits until no presence frame (change or snapshot) has arrived for
    QUIET_S (bounded).

    A user who is back on the other process before his old socket is gone
    never leaves nor joins, so the frames expected are not known in advance.
    """
    end = now() + deadline

    def newest():
        return max((r.last_frame_at() for r in readers), default=0.0)

    while now() < end and now() - max(newest(), end - deadline) < QUIET_S:
        await asyncio.sleep(0.05)  # state filled by the reader tasks


SCENARIOS = {
    "presence_churn": presence_churn,
    "presence_churn_ab": presence_churn_ab,
    "presence_delay": presence_delay,
    "presence_redis": presence_redis,
    "presence_restart": presence_restart,
}
