"""Settings with the test-only app tests.kindsapp (its own stream kinds) added."""

from authsocket.settings import *  # noqa: F403
from authsocket.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.kindsapp"]
ROOT_URLCONF = "tests.kindsapp.urls"
