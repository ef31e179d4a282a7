"""authsocket's ASGI application plus two bench-only paths (bench only).

`POST /bench/malloc-trim` runs a full garbage collection, then glibc's
`malloc_trim(0)`, in the server process, and answers its RSS after each:
whether the memory of 10,000 closed sockets can be given back to the
system, and by what. `GET /bench/gc` answers the collections of each
generation so far and the time they stopped the process: how much of a
handshake's cost with N sockets open is the collector's. Loaded only by the
scale cases (`bench.scale_app:application`), never by a deployment.
"""

import ctypes
import ctypes.util
import gc
import json
import time

from authsocket.asgi import application as authsocket_application

TRIM_PATH = "/bench/malloc-trim"
GC_PATH = "/bench/gc"
# generation → [collections, seconds], counted by a gc callback.
GC_PAUSES = {generation: [0, 0.0] for generation in range(3)}
_gc_started = [0.0]


def _gc_timer(phase: str, info: dict) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
        return
    entry = GC_PAUSES[info["generation"]]
    entry[0] += 1
    entry[1] += time.perf_counter() - _gc_started[0]


gc.callbacks.append(_gc_timer)


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def trim() -> dict:
    """A full collection, then malloc_trim(0) where glibc has it."""
    gc.collect()
    after_gc = rss_kib()
    libc_name = ctypes.util.find_library("c")
    trimmed = None
    if libc_name:
        libc = ctypes.CDLL(libc_name)
        if hasattr(libc, "malloc_trim"):
            trimmed = bool(libc.malloc_trim(0))
    return {
        "rss_after_gc_kib": after_gc,
        "rss_after_trim_kib": rss_kib(),
        "trimmed": trimmed,
    }


def gc_pauses() -> dict:
    return {
        "collections": [GC_PAUSES[g][0] for g in range(3)],
        "seconds": [round(GC_PAUSES[g][1], 6) for g in range(3)],
    }


BENCH_PATHS = {TRIM_PATH: trim, GC_PATH: gc_pauses}


async def application(scope, receive, send):
    answer = BENCH_PATHS.get(scope.get("path")) if scope["type"] == "http" else None
    if answer is None:
        return await authsocket_application(scope, receive, send)
    body = json.dumps(answer()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
