"""ASGI entry point as the peer package's docs compose it.

Channels' documented origin check wraps the simplejwt middleware stack
(Authorization header, then ?token=), which wraps the URL router.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from channels_auth_token_middlewares.middleware import (  # noqa: E402
    SimpleJWTAuthTokenMiddlewareStack,
)
from django.urls import path  # noqa: E402

from peer.consumers import EchoConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            SimpleJWTAuthTokenMiddlewareStack(
                URLRouter([path("ws/", EchoConsumer.as_asgi())])
            )
        ),
    }
)
