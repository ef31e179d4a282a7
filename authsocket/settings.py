"""authsocket settings, read from the environment (docs/protocol.md §1).

One file, one labelled block per concern. Every variable is listed in
`.env.example`. Outside debug mode the server refuses to start without the
secrets it needs, with a message that says what to set.
"""

import hashlib
import hmac
import os
from pathlib import Path

import dj_database_url
import django
from django.core.exceptions import ImproperlyConfigured

from authsocket.csp import csp_directives, csp_settings, websocket_sources
from core.env import (
    development_secret_key,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_log_format,
    env_max_message_bytes,
    env_max_process_send_buffer_bytes,
    env_max_send_buffer_bytes,
    env_origins,
    env_rate,
    env_secret,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Core -------------------------------------------------------------------

DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = env_secret("DJANGO_SECRET_KEY", debug=DEBUG)
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is not 1. Set it to a "
            "long random value, e.g. the output of: python -c 'import secrets; "
            "print(secrets.token_urlsafe(50))'"
        )
    SECRET_KEY = development_secret_key(BASE_DIR / ".dev-secret-key")

ALLOWED_HOSTS = env_origins(
    "DJANGO_ALLOWED_HOSTS",
    ["localhost", "127.0.0.1", "[::1]"],
    what="a host name like 'chat.example.org'",
)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served by us (no CDN)
    "channels",
    "core",
    "accounts",
    "realtime",
]

MIDDLEWARE = [
    "core.api_errors.JsonErrorsUnderApi",  # outermost: sees every answer
    "core.chunked_bodies.ChunkedBodyLength",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: it refuses only what staff users send the admin.
    "core.admin_input.AdminInputMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "authsocket.urls"
ASGI_APPLICATION = "authsocket.asgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Database ---------------------------------------------------------------

try:
    DATABASES = {
        "default": dj_database_url.parse(
            env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
            conn_health_checks=True,
        )
    }
except ValueError:  # its message quotes nothing, but say which variable
    raise ImproperlyConfigured(
        "DATABASE_URL is not a database URL (postgres://user:password@host:5432/"
        "name, sqlite:///path): check its scheme, its port and its quoting."
    ) from None
# Without a connect_timeout, a PostgreSQL that drops packets holds every
# request (and the revocation poll) that needs a new connection for as long
# as psycopg waits: over two minutes. A URL's own `?connect_timeout=` wins,
# and so does libpq's PGCONNECT_TIMEOUT (an explicit option would override it).
DATABASE_CONNECT_TIMEOUT = 5  # seconds; libpq's minimum is 2
# A connection already open to a server that vanished (a host gone, a
# firewall dropping its packets) is bounded by neither: a query waits for an
# answer on the system's TCP defaults, two hours before the first keepalive
# probe, and about 15 minutes of retransmissions when its own bytes go
# unacknowledged. These notice it within about 25 s: keepalive probes after
# 10 s of silence, 5 s apart, 3 unanswered ones end it, and so do bytes sent
# but unacknowledged for 25 s. A live server answers probes however long its
# query runs. A URL's own value of each wins (libpq reads none of them from
# the environment).
DATABASE_TCP_OPTIONS = {
    "keepalives": 1,
    "keepalives_idle": 10,  # seconds
    "keepalives_interval": 5,  # seconds
    "keepalives_count": 3,
    "tcp_user_timeout": 25_000,  # milliseconds
}
if DATABASES["default"]["ENGINE"] in {
    "django.db.backends.postgresql",
    "django.contrib.gis.db.backends.postgis",
}:
    database_options = DATABASES["default"].setdefault("OPTIONS", {})
    # libpq reads it, and refuses every connection if it is not a number.
    if not env_int("PGCONNECT_TIMEOUT", 0):
        database_options.setdefault("connect_timeout", DATABASE_CONNECT_TIMEOUT)
    for name, value in DATABASE_TCP_OPTIONS.items():
        database_options.setdefault(name, value)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several daphne processes, `manage.py notify` and the database thread all
    # write one file: WAL lets readers run beside a writer, IMMEDIATE takes
    # the write lock at BEGIN (no deadlocking lock upgrades), and the timeout
    # makes a busy writer wait instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so that close_old_connections() in the database
    # thread does not throw the test database away.
    # One file per test run, so two runs in one checkout do not share it.
    DATABASES["default"]["TEST"] = {
        "NAME": str(BASE_DIR / f"test-db-{os.getpid()}.sqlite3")
    }

# --- Channel layer and cache --------------------------------------------------

REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis, guarded so a Redis outage does not close every
            # socket (realtime/channels_redis_overrides.py).
            "BACKEND": "realtime.channels_redis_overrides.ResilientRedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "capacity": 1000, "expiry": 30},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            # Channels' in-memory layer with an amortized expiry sweep
            # (realtime/channels_overrides.py): one process only.
            "BACKEND": "realtime.channels_overrides.LocalChannelLayer",
            "CONFIG": {"capacity": 1000},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Passwords --------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

# --- Static files -----------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the finders in debug/tests, so no collectstatic is needed.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Proxies ----------------------------------------------------------------

AUTHSOCKET_TRUSTED_PROXIES = env_int("AUTHSOCKET_TRUSTED_PROXIES", 0)
if AUTHSOCKET_TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- HTTP API (Django REST framework) -----------------------------------------

REST_FRAMEWORK = {
    # Bearer JWTs only: no session or basic auth, so a 401 stays a 401 with
    # WWW-Authenticate and the API is never reachable with a cookie (no CSRF).
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.BearerAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Strict JSON only (depth, finite numbers): 400 parse_error, never a 500.
    "DEFAULT_PARSER_CLASSES": ["core.parsers.StrictJSONParser"],
    # An `Accept` the API cannot meet gets JSON anyway, never 406.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.negotiation.DefaultRendererFallback",
    "EXCEPTION_HANDLER": "core.api_errors.exception_handler",
    # drf-spectacular, plus every operation's error answers (core/openapi.py).
    "DEFAULT_SCHEMA_CLASS": "core.openapi.ErrorAnswersSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "NUM_PROXIES": AUTHSOCKET_TRUSTED_PROXIES,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "authsocket API",
    "DESCRIPTION": "JWT-authenticated realtime streams (see docs/protocol.md).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# --- CORS (HTTP API called from another site) ---------------------------------

CORS_ALLOWED_ORIGINS = env_origins(
    "AUTHSOCKET_CORS_ORIGINS", what="an origin like 'https://app.example.org'"
)
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_CREDENTIALS = True
CORS_ALLOW_HEADERS = ["authorization", "content-type", "x-authsocket-cookie"]
# Else another site's script cannot read how long a 429 asks it to wait, nor
# the scheme of a 401.
CORS_EXPOSE_HEADERS = ["Retry-After", "WWW-Authenticate"]

# --- Tokens (docs/protocol.md §1, §3) ------------------------------------------------

AUTHSOCKET_JWT_ALGORITHM = env_str("AUTHSOCKET_JWT_ALGORITHM", "HS256")
if AUTHSOCKET_JWT_ALGORITHM not in {"HS256", "RS256", "ES256", "EdDSA"}:
    raise ImproperlyConfigured(
        "AUTHSOCKET_JWT_ALGORITHM must be one of HS256, RS256, ES256, EdDSA."
    )
AUTHSOCKET_JWT_PRIVATE_KEY_FILE = env_str("AUTHSOCKET_JWT_PRIVATE_KEY_FILE")
AUTHSOCKET_JWT_PUBLIC_KEY_FILES = env_list("AUTHSOCKET_JWT_PUBLIC_KEY_FILES")
AUTHSOCKET_JWT_SECRET = env_secret("AUTHSOCKET_JWT_SECRET", debug=DEBUG)
if AUTHSOCKET_JWT_ALGORITHM == "HS256":
    if not AUTHSOCKET_JWT_SECRET:
        if not DEBUG:
            raise ImproperlyConfigured(
                "AUTHSOCKET_JWT_SECRET is required when DJANGO_DEBUG is not 1 "
                "(at least 32 random bytes), or configure an asymmetric algorithm "
                "with AUTHSOCKET_JWT_ALGORITHM and AUTHSOCKET_JWT_PRIVATE_KEY_FILE."
            )
        AUTHSOCKET_JWT_SECRET = hmac.new(
            SECRET_KEY.encode(), b"authsocket-jwt", hashlib.sha256
        ).hexdigest()
    if len(AUTHSOCKET_JWT_SECRET.encode()) < 32:
        raise ImproperlyConfigured("AUTHSOCKET_JWT_SECRET must be at least 32 bytes.")
elif not AUTHSOCKET_JWT_PRIVATE_KEY_FILE:
    raise ImproperlyConfigured(
        f"AUTHSOCKET_JWT_ALGORITHM={AUTHSOCKET_JWT_ALGORITHM} needs "
        "AUTHSOCKET_JWT_PRIVATE_KEY_FILE (PEM) to sign tokens."
    )

AUTHSOCKET_JWT_ISSUER = env_str("AUTHSOCKET_JWT_ISSUER", "authsocket")
AUTHSOCKET_JWT_AUDIENCE = env_str("AUTHSOCKET_JWT_AUDIENCE", "authsocket-ws")
AUTHSOCKET_ACCESS_TTL = env_int("AUTHSOCKET_ACCESS_TTL", 300, minimum=1)
AUTHSOCKET_REFRESH_TTL = env_int("AUTHSOCKET_REFRESH_TTL", 1_209_600, minimum=1)
# A session ends AUTHSOCKET_REFRESH_TTL after login. A longer-lived access
# token would outlive every session it is issued for: the API refuses it once
# the session is over, but a socket opened with it stays open until its `exp`.
if AUTHSOCKET_ACCESS_TTL > AUTHSOCKET_REFRESH_TTL:
    raise ImproperlyConfigured(
        f"AUTHSOCKET_ACCESS_TTL ({AUTHSOCKET_ACCESS_TTL} s) must be at most "
        f"AUTHSOCKET_REFRESH_TTL ({AUTHSOCKET_REFRESH_TTL} s), the lifetime of "
        "a session: a token cannot outlive its session."
    )
AUTHSOCKET_REFRESH_GRACE = env_int("AUTHSOCKET_REFRESH_GRACE", 10)
AUTHSOCKET_TICKET_TTL = env_int("AUTHSOCKET_TICKET_TTL", 30, minimum=1)
AUTHSOCKET_LEEWAY = env_int("AUTHSOCKET_LEEWAY", 10)
# How long credentials of ended sessions and revocation log rows are kept
# before `manage.py prune_credentials` deletes them.
AUTHSOCKET_CREDENTIAL_RETENTION = env_int(
    "AUTHSOCKET_CREDENTIAL_RETENTION", 2_592_000, minimum=1
)
AUTHSOCKET_REFRESH_COOKIE = "authsocket_refresh"

# --- Throttles (per process cache, or Redis when REDIS_URL is set) --------------

AUTHSOCKET_LOGIN_THROTTLE = env_rate("AUTHSOCKET_LOGIN_THROTTLE", "10/min")
AUTHSOCKET_LOGIN_ADDRESS_THROTTLE = env_rate(
    "AUTHSOCKET_LOGIN_ADDRESS_THROTTLE", "60/min"
)
AUTHSOCKET_TICKET_THROTTLE = env_rate("AUTHSOCKET_TICKET_THROTTLE", "60/min")
AUTHSOCKET_PASSWORD_THROTTLE = env_rate("AUTHSOCKET_PASSWORD_THROTTLE", "5/min")
# Failed service-key attempts on /api/server/ per client address.
AUTHSOCKET_SERVICE_KEY_THROTTLE = env_rate("AUTHSOCKET_SERVICE_KEY_THROTTLE", "30/min")

# --- WebSocket (docs/protocol.md §4) ------------------------------------------------

AUTHSOCKET_QUERY_TOKEN = env_bool("AUTHSOCKET_QUERY_TOKEN", True)
AUTHSOCKET_ALLOWED_ORIGINS = env_origins(
    "AUTHSOCKET_ALLOWED_ORIGINS", what="an origin like 'https://chat.example.org'"
)
AUTHSOCKET_MAX_MESSAGE_BYTES = env_max_message_bytes()
AUTHSOCKET_FRAME_RATE = env_rate("AUTHSOCKET_FRAME_RATE", "50/s")
AUTHSOCKET_MAX_SUBSCRIPTIONS = env_int("AUTHSOCKET_MAX_SUBSCRIPTIONS", 100, minimum=1)
AUTHSOCKET_REPLAY_LIMIT = env_int("AUTHSOCKET_REPLAY_LIMIT", 1000, minimum=1)
# Bytes of frames a socket's client may leave unread before the socket is
# dropped (realtime/outgoing_frames.py, docs/protocol.md §4.3).
AUTHSOCKET_MAX_SEND_BUFFER_BYTES = env_max_send_buffer_bytes(
    replay_limit=AUTHSOCKET_REPLAY_LIMIT, max_message_bytes=AUTHSOCKET_MAX_MESSAGE_BYTES
)
# ... and that all the sockets of one process may hold together; past it the
# sockets with the most bytes waiting are dropped, the slowest first.
AUTHSOCKET_MAX_PROCESS_SEND_BUFFER_BYTES = env_max_process_send_buffer_bytes(
    per_socket=AUTHSOCKET_MAX_SEND_BUFFER_BYTES
)
# History retention (docs/streams.md); a stream kind may set its own.
AUTHSOCKET_HISTORY_MAX_AGE = env_int("AUTHSOCKET_HISTORY_MAX_AGE", 2592000, minimum=1)
AUTHSOCKET_HISTORY_MAX_PER_STREAM = env_int(
    "AUTHSOCKET_HISTORY_MAX_PER_STREAM", 10000, minimum=1
)
AUTHSOCKET_MAX_CONNECTIONS_PER_USER = env_int(
    "AUTHSOCKET_MAX_CONNECTIONS_PER_USER", 50, minimum=1
)
# Seconds after which the sockets of a process that died without saying
# goodbye are forgotten and their users' presence.leave sent (realtime/presence).
AUTHSOCKET_PRESENCE_TTL = env_int("AUTHSOCKET_PRESENCE_TTL", 30, minimum=1)
# Milliseconds a process gathers presence changes before sending them, one
# message per stream (realtime/presence/outbox.py). A join waits until it has
# stood a whole window, so it goes out one to two windows after the subscribe:
# at most 400, so it still reaches every watcher within the second
# docs/protocol.md allows.
AUTHSOCKET_PRESENCE_WINDOW_MS = env_int("AUTHSOCKET_PRESENCE_WINDOW_MS", 200)
if AUTHSOCKET_PRESENCE_WINDOW_MS > 400:
    raise ImproperlyConfigured("AUTHSOCKET_PRESENCE_WINDOW_MS must be at most 400.")
# How often each process polls the database for revoked sessions (the safety
# net behind channel-layer notifications; docs/protocol.md §3 allows one second).
AUTHSOCKET_REVOCATION_POLL = 0.5
# Young-generation threshold of the garbage collector (authsocket/gc_tuning.py):
# many live sockets make CPython's default of 700 stop the loop for 100+ ms at
# a time. 0 keeps CPython's defaults.
AUTHSOCKET_GC_THRESHOLD = env_int("AUTHSOCKET_GC_THRESHOLD", 50_000)
# WebSockets one process is expected to hold: `authsocket.serve` warns at start
# when the open-file limit leaves room for fewer (authsocket/fd_limits.py).
AUTHSOCKET_EXPECTED_SOCKETS = env_int("AUTHSOCKET_EXPECTED_SOCKETS", 10_000)
# When the open sockets fall to half their peak or less, by at least this many,
# one full collection and malloc_trim give the closed sockets' memory back
# (core/memory.py). Off (0) by default: the collection stops the event
# loop for up to a second with thousands of sockets still open, which the
# one-second revocation promise cannot afford; turn it on where memory is
# scarcer than latency.
AUTHSOCKET_RECLAIM_AFTER_DROP = env_int("AUTHSOCKET_RECLAIM_AFTER_DROP", 0)

# --- Metrics (GET /metrics, docs/metrics.md) -------------------------------------

# The bearer token /metrics requires; unset: no /metrics at all (404). A
# short one is a warning of `check --deploy` (core/checks.py), as
# Django treats a weak SECRET_KEY: the figures are an operator's, not users'.
AUTHSOCKET_METRICS_TOKEN = env_secret("AUTHSOCKET_METRICS_TOKEN", debug=DEBUG)
# 0 turns instrumentation off (the bench's "metrics off" baseline).
AUTHSOCKET_METRICS = env_bool("AUTHSOCKET_METRICS", True)

# --- Security headers and cookies (outside debug) ------------------------------

SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)

# --- Content-Security-Policy (authsocket/csp.py) --------------------------------

# Django 6 sends the header itself; on Django 5.2 django-csp does. Right after
# SecurityMiddleware, so every response (redirects and static files too) has it.
# The sockets' sources come from DJANGO_ALLOWED_HOSTS and
# AUTHSOCKET_ALLOWED_ORIGINS, once at start-up.
_csp = csp_settings(
    csp_directives(
        websocket_sources=websocket_sources(
            allowed_hosts=ALLOWED_HOSTS, allowed_origins=AUTHSOCKET_ALLOWED_ORIGINS
        )
    ),
    django_version=django.VERSION,
)
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    _csp.middleware,
)
globals()[_csp.setting] = _csp.value  # SECURE_CSP, or CONTENT_SECURITY_POLICY

# --- Logging ----------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "authsocket.logging.RedactSecretsFilter"},
        "one_line": {"()": "authsocket.logging.OneLineFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "authsocket.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["redact"],
            "formatter": env_log_format(),
        },
        # A handler's filters also see what child loggers propagate to it.
        "console_one_line": {
            "class": "logging.StreamHandler",
            "filters": ["one_line", "redact"],
            "formatter": env_log_format(),
        },
    },
    "root": {
        "handlers": ["console"],
        "level": env_choice(
            "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        ),
    },
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # Django logs 4xx with the full path (query string included): our
        # filter redacts it, and the level keeps routine 401s out of the log.
        "django.request": {
            "handlers": ["console"],
            "level": "ERROR",
            "propagate": False,
        },
        # A client's suspicious request: one line, no traceback (its 400 says
        # why; authsocket.logging.OneLineFilter).
        "django.security": {
            "handlers": ["console_one_line"],
            "level": "INFO",
            "propagate": False,
        },
    },
}
