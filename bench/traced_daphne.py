"""daphne with a memory control channel, for bench/memory_profile.py.

With `BENCH_TRACEMALLOC_FRAMES=N` (N > 0) tracemalloc starts before daphne
imports anything, keeping N frames per allocation. On SIGUSR1 the process
reads one command from `$BENCH_MEMORY_CONTROL`, runs it on the main thread
(between two event-loop callbacks, so no socket changes meanwhile) and
writes its JSON answer to `$BENCH_MEMORY_CONTROL.out`:

- `rss`: resident and heap figures, nothing changed;
- `snapshot PATH`: a full collection, then the tracemalloc snapshot dumped to
  PATH, and the objects the collector tracks, counted by type;
- `collect`: one full collection, timed (the event loop's pause);
- `garbage`: what only a full collection frees, by type, then freed;
- `trim`: glibc's `malloc_trim(0)`, RSS before and after (any stack).
"""

import collections
import ctypes
import functools
import gc
import json
import os
import signal
import sys
import time
import tracemalloc

FRAMES = int(os.environ.get("BENCH_TRACEMALLOC_FRAMES", "0"))
if FRAMES > 0:  # before any import below allocates: start-up is traced too
    tracemalloc.start(FRAMES)

from daphne.cli import CommandLineInterface  # noqa: E402

TOP_TYPES = 60


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def heap_figures() -> dict:
    """What the allocators hold: glibc's arena totals and CPython's blocks."""
    figures = {"rss_kib": rss_kib(), "allocated_blocks": sys.getallocatedblocks()}
    try:
        info = _mallinfo2()
    except (OSError, AttributeError):
        return figures
    figures.update(
        malloc_arena_kib=info.arena // 1024,  # sbrk heap
        malloc_mmap_kib=info.hblkhd // 1024,  # mmapped: own blocks and arenas
        malloc_in_use_kib=info.uordblks // 1024,
        malloc_free_kib=info.fordblks // 1024,  # held by glibc, not in use
        malloc_top_free_kib=info.keepcost // 1024,  # trimmable at the heap top
    )
    return figures


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@functools.cache
def _libc() -> ctypes.CDLL:
    """Loaded once: each CDLL() leaves reference cycles the census would count."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _Mallinfo2
    return libc


def _mallinfo2() -> _Mallinfo2:
    return _libc().mallinfo2()


def object_counts() -> dict:
    """Objects the collector tracks (containers), by type: count and shallow bytes."""
    counts, sizes = collections.Counter(), collections.Counter()
    for obj in gc.get_objects():
        name = f"{type(obj).__module__}.{type(obj).__qualname__}"
        counts[name] += 1
        sizes[name] += sys.getsizeof(obj)
    return {name: [counts[name], sizes[name]] for name, _ in counts.most_common()}


def collect() -> dict:
    """One full collection, as the collector or core.memory would run it."""
    before = heap_figures()
    started = time.perf_counter()
    found = gc.collect()
    seconds = time.perf_counter() - started
    return {
        "before": before,
        "after": heap_figures(),
        "unreachable": found,
        "seconds": round(seconds, 3),  # the event loop's pause
    }


def garbage() -> dict:
    """What only the collector could free, by type; then freed."""
    before = heap_figures()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        found = gc.collect()
        kinds = collections.Counter(
            f"{type(obj).__module__}.{type(obj).__qualname__}" for obj in gc.garbage
        )
        gc.garbage.clear()
    finally:
        gc.set_debug(0)
    gc.collect()  # SAVEALL kept them in gc.garbage: now they are freed
    return {
        "before": before,
        "after": heap_figures(),
        "unreachable": found,
        "garbage": dict(kinds.most_common(TOP_TYPES)),
    }


def run(command: str) -> dict:
    verb, _, argument = command.strip().partition(" ")
    if verb == "rss":
        return heap_figures()
    if verb == "snapshot":
        gc.collect()
        answer = heap_figures()
        answer["objects"] = object_counts()
        if tracemalloc.is_tracing():
            tracemalloc.take_snapshot().dump(argument)
            answer["traced_kib"] = tracemalloc.get_traced_memory()[0] // 1024
        return answer
    if verb == "collect":
        return collect()
    if verb == "garbage":
        return garbage()
    if verb == "trim":
        before = heap_figures()
        released = _libc().malloc_trim(0)
        return {"before": before, "after": heap_figures(), "released": bool(released)}
    return {"error": f"unknown command {verb!r}"}


def install(control: str) -> None:
    def answer(signum, frame):
        with open(control) as file:
            command = file.read()
        try:
            result = run(command)
        except Exception as exc:  # the caller waits for an answer either way
            result = {"error": f"{type(exc).__name__}: {exc}"}
        with open(f"{control}.tmp", "w") as out:
            json.dump(result, out)
        os.replace(f"{control}.tmp", f"{control}.out")

    signal.signal(signal.SIGUSR1, answer)


if __name__ == "__main__":
    install(os.environ["BENCH_MEMORY_CONTROL"])
    CommandLineInterface().run(sys.argv[1:])
