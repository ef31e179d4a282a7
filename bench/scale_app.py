"""authsocket's ASGI application plus one bench-only path (bench only).

`POST /bench/malloc-trim` runs a full garbage collection, then glibc's
`malloc_trim(0)`, in the server process, and answers its RSS after each:
whether the memory of 10,000 closed sockets can be given back to the
system, and by what. Loaded only by the scale cases
(`bench.scale_app:application`), never by a deployment.
"""

import ctypes
import ctypes.util
import gc
import json

from authsocket.asgi import application as authsocket_application

TRIM_PATH = "/bench/malloc-trim"


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


async def application(scope, receive, send):
    if scope["type"] != "http" or scope.get("path") != TRIM_PATH:
        return await authsocket_application(scope, receive, send)
    body = json.dumps(trim()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
