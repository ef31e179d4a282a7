"""Settings with tests.kindsclash, whose kind overlaps the built-in `room`."""

from authsocket.settings import *  # noqa: F403
from authsocket.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.kindsclash"]
