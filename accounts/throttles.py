"""Brute-force limits for login and tickets (PROTOCOL §1).

The client address comes from DRF's `get_ident`, which believes
`X-Forwarded-For` only as far as `AUTHSOCKET_TRUSTED_PROXIES` (NUM_PROXIES)
says, so a client cannot pick its own address to escape the limit.
"""

import hashlib

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class SettingsRateThrottle(SimpleRateThrottle):
    """Reads its rate from our settings at call time.

    DRF's own throttles capture DEFAULT_THROTTLE_RATES at import, which makes
    them deaf to test overrides.
    """

    rate_setting = ""

    def get_rate(self) -> str:
        return getattr(settings, self.rate_setting)


class LoginThrottle(SettingsRateThrottle):
    """Attempts per (username, client address): slows guessing one password."""

    scope = "login"
    rate_setting = "AUTHSOCKET_LOGIN_THROTTLE"

    def get_cache_key(self, request, view):
        username = (
            request.data.get("username") if isinstance(request.data, dict) else None
        )
        if not isinstance(username, str):
            username = ""
        digest = hashlib.sha256(
            username.casefold().encode("utf-8", "replace")
        ).hexdigest()
        return self.cache_format % {
            "scope": self.scope,
            "ident": f"{self.get_ident(request)}:{digest[:32]}",
        }


class LoginAddressThrottle(SettingsRateThrottle):
    """Attempts per client address, any username: slows spraying many users."""

    scope = "login_address"
    rate_setting = "AUTHSOCKET_LOGIN_ADDRESS_THROTTLE"

    def get_cache_key(self, request, view):
        return self.cache_format % {
            "scope": self.scope,
            "ident": self.get_ident(request),
        }


class TicketThrottle(SettingsRateThrottle):
    """WebSocket tickets per user."""

    scope = "ticket"
    rate_setting = "AUTHSOCKET_TICKET_THROTTLE"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
