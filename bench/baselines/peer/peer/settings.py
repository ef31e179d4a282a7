"""Settings of the peer baseline: channels-auth-token-middlewares + simplejwt.

Configured the way their documentation shows a Django user doing it, with
Django's defaults elsewhere (CONN_MAX_AGE=0 included), DEBUG off.
"""

import os
from datetime import timedelta

SECRET_KEY = os.environ.get("BENCH_SECRET_KEY", "bench-peer-not-secret-" + "x" * 32)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "channels",
    "channels_auth_token_middlewares",
    "peer",
]
MIDDLEWARE = []
ROOT_URLCONF = "peer.urls"
ASGI_APPLICATION = "peer.asgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DB_PATH", "db.sqlite3"),
    }
}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
SIMPLE_JWT = {
    "ALGORITHM": "HS256",
    "SIGNING_KEY": os.environ.get("BENCH_JWT_SECRET", SECRET_KEY),
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=5),
}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {"version": 1, "disable_existing_loggers": False}
