"""ASGI entry point: HTTP through Django, WebSockets through Channels.

The order is fixed: Django is set up by `get_asgi_application()` BEFORE any
module that touches models is imported. For WebSockets the Origin check is
outermost (a cross-site page never reaches token parsing), then the JWT
middleware, then the URL router with the paths of authsocket/routing.py
(`realtime.routing.websocket_application`).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authsocket.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from authsocket.daphne_requests import daphne_request_fixes  # noqa: E402
from authsocket.db_connections import close_connections_after_requests  # noqa: E402
from authsocket.eager_writes import write_at_once  # noqa: E402
from authsocket.gc_tuning import tune_garbage_collector  # noqa: E402
from authsocket.health import HealthMiddleware  # noqa: E402
from authsocket.logging import redact_daphne_access_log  # noqa: E402
from authsocket.metrics_endpoint import MetricsMiddleware  # noqa: E402
from authsocket.routing import websocket_urlpatterns  # noqa: E402
from realtime.handshake_refusals import daphne_handshake_refusals  # noqa: E402
from realtime.internal_error_close import allow_internal_error_close  # noqa: E402
from realtime.message_size import close_oversized_messages_4413  # noqa: E402
from realtime.outgoing_frames import guard_outgoing_frames  # noqa: E402
from realtime.routing import websocket_application  # noqa: E402

# daphne's access log bypasses logging filters and prints HTTP query strings;
# autobahn's own refusals of a handshake could quote a token in their status
# line (plain daphne: authsocket.serve applies both patches itself).
redact_daphne_access_log()
daphne_handshake_refusals()
# Input daphne mishandles: a client's Daphne-Root-Path header and a multipart
# body Twisted cannot parse (500s, an empty 400), a frame sent as the client
# leaves (a traceback), a client that reads nothing (memory without bound), a
# message over plain daphne's limit (1006, not 4413). Each module says why.
daphne_request_fixes()
guard_outgoing_frames()
# Bytes go to the kernel at once, not at the next turn of the loop.
write_at_once()
close_oversized_messages_4413()
# A consumer that met a database outage closes 1011 itself, without the
# traceback daphne logs for an application that raised.
allow_internal_error_close()
# Each HTTP request's database connection is closed when it ends: under ASGI
# no later request could reuse it (authsocket/db_connections.py).
close_connections_after_requests()

application = ProtocolTypeRouter(
    {
        # /healthz, /readyz and /metrics are answered before Django: probes
        # and scrapers use their own Host and plain HTTP, and /metrics must
        # answer while the database is down (see authsocket/health.py).
        "http": MetricsMiddleware(HealthMiddleware(django_asgi_app)),
        "websocket": websocket_application(websocket_urlpatterns),
    }
)

# Last, so that everything start-up created is frozen (see the module).
tune_garbage_collector()
