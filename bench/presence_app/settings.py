"""authsocket's settings plus the bench's two stream kinds (bench only)."""

import os

from authsocket.settings import *  # noqa: F403
from authsocket.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench.presence_app"]

# bench/presence_server_instructions.py runs the server under valgrind, some
# fifty times slower than the clock: it stretches the window alike, so that a
# window holds as many subscribes as in the timed case. Unset everywhere else.
if "BENCH_PRESENCE_WINDOW_MS" in os.environ:
    AUTHSOCKET_PRESENCE_WINDOW_MS = int(os.environ["BENCH_PRESENCE_WINDOW_MS"])
