"""The measured scenarios of issue 7, each a coroutine returning a flat dict.

Every wait is bounded; a scenario that needs an endpoint or frame the server
lacks returns {"status": "n/a", ...} instead of failing.
"""

import asyncio
import base64
import json
import random
import secrets

from bench.client import (
    FRAME_TIMEOUT_S,
    ErrorTally,
    FeatureMissing,
    Refused,
    Target,
    abort_all,
    api_client,
    api_failure,
    latency_summary,
    now,
    open_welcomed,
    percentile,
    recv_type,
    ws_open,
)

REVOKED_CLOSE_CODE = 4403  # docs/protocol.md §4.3
STORM_MAX_BACKOFF_S = 1.0


def not_available(reason: str) -> dict:
    """The result of a scenario whose feature the server does not have yet."""
    return {"status": "n/a", "reason": f"feature missing: {reason}"}


async def run_pool(count: int, concurrency: int, job) -> float:
    """Runs job(i) for i in range(count) with at most `concurrency` at once.

    Returns the wall time in seconds. Workers pull indices from a shared
    counter, so a slow job never leaves the others idle.
    """
    indices = iter(range(count))

    async def worker():
        for i in indices:
            await job(i)

    start = now()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, count)):
                group.create_task(worker())
    except ExceptionGroup as group_error:
        raise group_error.exceptions[0] from None  # the siblings are cancelled
    return now() - start


async def open_many(target: Target, tokens: list[str], count: int, concurrency: int):
    """Opens `count` welcomed sockets (token i for socket i); fails on any error."""
    sockets = [None] * count

    async def job(i):
        sockets[i] = await open_welcomed(target, tokens[i % len(tokens)])

    try:
        await run_pool(count, concurrency, job)
    except BaseException:
        await abort_all([ws for ws in sockets if ws is not None])
        raise
    return sockets


async def handshake(target, tokens, *, transport, count, concurrency) -> dict:
    """open → welcome → close, K times at concurrency C (ticket fetch included)."""
    latencies, errors = [], ErrorTally()

    async def job(i):
        start = now()
        try:
            ws = await open_welcomed(target, tokens[i % len(tokens)], transport)
        except FeatureMissing:
            raise
        except Exception as exc:  # counted, the run goes on
            errors.add(exc)
            return
        latencies.append(now() - start)
        await close_quietly(ws, errors)

    try:
        wall = await run_pool(count, concurrency, job)
    except FeatureMissing as exc:
        return not_available(str(exc))
    return {
        "transport": transport,
        "connections_per_s": round(len(latencies) / wall, 1),
        "ok": len(latencies),
        **latency_summary(latencies),
        **errors.as_dict(),
    }


async def close_quietly(ws, errors: ErrorTally) -> None:
    """Closes a socket; a failed close is counted, never ends the scenario."""
    try:
        await ws.close()
    except Exception as exc:
        errors.add(exc)


def bad_tokens(good: str) -> list[str]:
    """Refusable variants of a valid JWT: the mix the reject scenario sends.

    Forged signature, altered claims under the old signature, `alg: none`,
    random garbage, and a token over docs/protocol.md §3's 4096-byte limit.
    """
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    for key in ("sub", "user_id"):  # authsocket's claim, then simplejwt's
        if key in claims:
            claims[key] = "2" if claims[key] == "1" else "1"
    forged_payload = b64url(json.dumps(claims).encode())
    none_header = b64url(b'{"alg":"none","typ":"JWT"}')
    return [
        f"{header}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}",
        f"{header}.{forged_payload}.{signature}",
        f"{none_header}.{payload}.",
        secrets.token_urlsafe(32),
        "a" * 5000,
    ]


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def reject(target, tokens, *, count, concurrency) -> dict:
    """Bad tokens at the handshake: refusals/s; any acceptance is a finding."""
    mix = [bad for good in tokens[:4] for bad in bad_tokens(good)]
    latencies, accepted, errors = [], 0, ErrorTally()

    async def job(i):
        nonlocal accepted
        start = now()
        try:
            ws = await ws_open(target, mix[i % len(mix)], "token")
        except Refused:
            latencies.append(now() - start)
            return
        except Exception as exc:
            errors.add(exc)
            return
        accepted += 1  # should never happen: a bad token got a socket
        await close_quietly(ws, errors)

    wall = await run_pool(count, concurrency, job)
    return {
        "refusals_per_s": round(len(latencies) / wall, 1),
        "refused": len(latencies),
        "accepted_bad_tokens": accepted,
        **latency_summary(latencies),
        **errors.as_dict(),
    }


async def echo(target, tokens, *, concurrency, duration) -> dict:
    """C open sockets each doing ping → pong back to back for `duration` s."""
    sockets = await open_many(target, tokens, concurrency, concurrency)
    rtts, errors = [], ErrorTally()
    ping = json.dumps({"type": "ping"})

    async def loop(ws, deadline):
        while now() < deadline:
            start = now()
            try:
                await ws.send(ping)
                await recv_type(ws, "pong")
            except Exception as exc:
                errors.add(exc)
                return
            rtts.append(now() - start)

    start = now()
    await asyncio.gather(*(loop(ws, start + duration) for ws in sockets))
    wall = now() - start
    await abort_all(sockets)
    return {
        "round_trips_per_s": round(len(rtts) / wall, 1),
        "round_trips": len(rtts),
        **latency_summary(rtts, "rtt_"),
        **errors.as_dict(),
    }


def rss_kib(pid: int) -> int:
    """VmRSS of a process, KiB, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def ping_all(sockets) -> None:
    """One ping round trip on every socket: the server has settled them all."""
    ping = json.dumps({"type": "ping"})

    async def one(ws):
        await ws.send(ping)
        await recv_type(ws, "pong")

    await asyncio.gather(*(one(ws) for ws in sockets))


async def idle(target, tokens, *, count, concurrency, server_pid) -> dict:
    """Server RSS growth per held socket, after a warm-up of the same work.

    The warm-up (open, ping, close of a batch) loads lazy imports, database
    connections and caches first, so the growth is the sockets' own.
    """
    warm = await open_many(target, tokens, concurrency, concurrency)
    await ping_all(warm)
    await abort_all(warm)
    before = rss_kib(server_pid)
    sockets = await open_many(target, tokens, count, concurrency)
    await ping_all(sockets)
    after = rss_kib(server_pid)
    await abort_all(sockets)
    return {
        "sockets": count,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_connection": round((after - before) / count, 2),
    }


async def fanout(target, tokens, *, subscribers, publishes, room) -> dict:
    """One publish to a room with N subscribers; latency to each, and the last.

    The publisher joins the room over HTTP (publishing needs membership) and
    does not subscribe, so every delivery measured is to another socket.
    """
    stream = f"room:{room}"
    async with api_client(target, tokens[0]) as api:
        failed = await api_failure(api, "POST", f"/api/rooms/{room}/membership")
    if failed is not None:
        return not_available(f"POST /api/rooms/{room}/membership answers {failed}")
    publisher = await open_welcomed(target, tokens[0])
    subs = await open_many(target, tokens[1:], subscribers, 100)
    try:
        await subscribe_all(subs, stream)
        return await measure_publishes(publisher, subs, stream, publishes)
    except FeatureMissing as exc:
        return not_available(str(exc))
    finally:
        await abort_all([publisher, *subs])


async def subscribe_all(sockets, stream: str) -> None:
    """Subscribes every socket and waits for each `subscribed` answer."""
    frame = json.dumps({"type": "subscribe", "stream": stream})

    async def one(ws):
        await ws.send(frame)
        await recv_type(ws, "subscribed")

    await asyncio.gather(*(one(ws) for ws in sockets))


async def measure_publishes(publisher, subs, stream, publishes) -> dict:
    """Publishes one at a time; each waits until all subscribers have it."""
    per_delivery, per_last, missing = [], [], 0
    for _ in range(publishes):
        marker = secrets.token_hex(8)
        frame = {"type": "publish", "stream": stream, "data": {"bench": marker}}
        start = now()
        await publisher.send(json.dumps(frame))
        arrivals = await asyncio.gather(
            *(wait_message(ws, marker) for ws in subs), return_exceptions=True
        )
        got = [t - start for t in arrivals if isinstance(t, float)]
        missing += len(subs) - len(got)
        per_delivery += got
        if got:
            per_last.append(max(got))
        await recv_type(publisher, "published")
    return {
        "subscribers": len(subs),
        "publishes": publishes,
        "missing_deliveries": missing,
        **latency_summary(per_delivery, "delivery_"),
        **latency_summary(per_last, "last_"),
    }


async def wait_message(ws, marker: str) -> float:
    """Time at which the `message` carrying `marker` reached this socket."""
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("type") == "message" and frame.get("data") == {
                "bench": marker
            }:
                return now()


class RevocationTimes:
    """logout → close 4403, timed from sending the logout (what a user sees)
    and from its 204 answer (the revocation has committed)."""

    def __init__(self) -> None:
        self.from_request, self.from_answer, self.errors = [], [], ErrorTally()

    async def logout(self, api) -> tuple[int | None, float, float]:
        """POST /api/auth/logout: (failure status or None, sent at, answered at)."""
        start = now()
        failed = await api_failure(api, "POST", "/api/auth/logout")
        return failed, start, now()

    async def closed(self, ws, failed, start: float, answered: float) -> None:
        """Wait for the socket's 4403 and record both delays (or the error)."""
        try:
            await wait_closed(ws, failed)
        except Exception as exc:
            self.errors.add(exc)
            ws.transport.abort()
            return
        self.from_request.append(now() - start)
        self.from_answer.append(now() - answered)

    def summary(self) -> dict:
        return {
            "samples": len(self.from_request),
            **latency_summary(self.from_request),
            **latency_summary(self.from_answer, "after_204_"),
            **self.errors.as_dict(),
        }


async def revocation(target, tokens, *, samples, logout_target=None) -> dict:
    """logout over HTTP → close 4403 of the socket of that session.

    `logout_target` is another process of the same deployment for the
    cross-process case.
    """
    logout_target = logout_target or target
    times = RevocationTimes()
    for token in tokens[:samples]:
        ws = await open_welcomed(target, token)
        async with api_client(logout_target, token) as api:
            failed, start, answered = await times.logout(api)
        if failed in (404, 405):
            ws.transport.abort()
            return not_available(f"POST /api/auth/logout answers {failed}")
        await times.closed(ws, failed, start, answered)
    return times.summary()


async def wait_closed(ws, logout_failed: int | None) -> None:
    """Waits for the server's close of a revoked socket and checks its code."""
    if logout_failed is not None:
        raise RuntimeError(f"logout answered HTTP {logout_failed}")
    try:
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            await ws.wait_closed()
    except TimeoutError:
        raise TimeoutError("socket still open 10 s after logout") from None
    if ws.close_code != REVOKED_CLOSE_CODE:
        raise RuntimeError(f"closed with {ws.close_code}, not {REVOKED_CLOSE_CODE}")


async def storm(target, tokens, *, count, concurrency, deadline) -> dict:
    """N sockets dropped at once (no close handshake), all reconnecting at once.

    Each client retries with capped, jittered exponential backoff, as
    docs/protocol.md §4.3 tells clients to; every failed attempt counts as an error.
    """
    sockets = await open_many(target, tokens, count, concurrency)
    for ws in sockets:
        ws.transport.abort()
    errors = ErrorTally()
    start = now()
    results = await asyncio.gather(
        *(
            reconnect(target, tokens[i % len(tokens)], errors, start + deadline)
            for i in range(count)
        )
    )
    back = [ws for ws, _ in results if ws is not None]
    times = [at - start for _, at in results if at is not None]
    await abort_all(back)
    return {
        "sockets": count,
        "recovered": len(back),
        "gave_up": count - len(back),
        "seconds_to_all_back": round(max(times), 3) if len(back) == count else None,
        "back_within_10s": sum(t <= 10 for t in times),
        **{f"back_p{q}_s": round(percentile(times, q), 3) for q in (50, 90) if times},
        **errors.as_dict(),
    }


async def reconnect(target, token, errors: ErrorTally, deadline: float):
    """Reconnects until welcomed or `deadline` passes.

    Like a browser, a client waits for its handshake as long as it takes (up
    to the deadline) rather than abandoning it after a few seconds: a client
    timeout shorter than the server's backlog turns a storm into a livelock.
    Returns (socket, time it was welcomed), or (None, None) on giving up.
    """
    delay = 0.05
    while now() < deadline:
        try:
            ws = await open_welcomed(target, token, timeout=deadline - now())
        except Exception as exc:
            errors.add(exc)
        else:
            return ws, now()
        await asyncio.sleep(random.uniform(0, delay))  # backoff, not a wait
        delay = min(delay * 2, STORM_MAX_BACKOFF_S)
    return None, None


SCENARIOS = {
    "handshake": handshake,
    "reject": reject,
    "echo": echo,
    "idle": idle,
    "fanout": fanout,
    "revocation": revocation,
    "storm": storm,
}
