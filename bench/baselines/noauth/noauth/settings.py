"""Settings of the no-authentication baseline: the bare Channels stack.

It is the upper bound of what Django + Channels + daphne can do with the
same wire shape, so it carries nothing that costs time on a handshake.
"""

import os

SECRET_KEY = os.environ.get("BENCH_SECRET_KEY", "bench-noauth-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "channels",
    "noauth",
]
MIDDLEWARE = []
ROOT_URLCONF = "noauth.urls"
ASGI_APPLICATION = "noauth.asgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DB_PATH", "db.sqlite3"),
    }
}
# The same layer as authsocket: in-memory, or channels_redis when REDIS_URL is
# set, so every consumer gets a channel name as it does there.
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
if os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ["REDIS_URL"]]},
        }
    }
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {"version": 1, "disable_existing_loggers": False}
