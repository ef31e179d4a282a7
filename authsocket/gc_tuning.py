"""Garbage-collector settings for a process holding many live sockets.

CPython collects its youngest generation after every 700 net allocations of
container objects. A server holding many sockets has hundreds of live objects
per socket, and a fan-out wave keeps thousands of short-lived ones (tasks,
frames, events) alive at once: they are promoted, die in the old generation,
and trigger full collections that scan everything, free nothing and stop the
event loop meanwhile (measured in `make bench`; see docs/architecture.md).

Two standard remedies, applied once when the ASGI application is built:

- `gc.freeze()` moves everything alive after start-up (Django, the URL
  conf, every imported module) out of the collector's sight for good;
- a young-generation threshold of `AUTHSOCKET_GC_THRESHOLD` lets those
  short-lived objects die by reference counting before any collection sees
  them. Cyclic garbage is still collected, just in larger batches.

`AUTHSOCKET_GC_THRESHOLD=0` keeps CPython's defaults.
"""

import gc

from django.conf import settings

OLDER_GENERATIONS = (20, 20)  # collections of the younger generation per pass


def tune_garbage_collector() -> None:
    threshold = settings.AUTHSOCKET_GC_THRESHOLD
    if not threshold:
        return
    gc.collect()  # what start-up left as garbage is not frozen with the rest
    gc.freeze()
    gc.set_threshold(threshold, *OLDER_GENERATIONS)
