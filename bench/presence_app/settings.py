"""authsocket's settings plus the bench's two stream kinds (bench only)."""

from authsocket.settings import *  # noqa: F403
from authsocket.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench.presence_app"]
