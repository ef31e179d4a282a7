"""Brute-force limits for login, password changes and tickets (docs/protocol.md §1).

The API's login and the admin's login form count on the same counters.

The client address comes from DRF's `get_ident`, which believes
`X-Forwarded-For` only as far as `AUTHSOCKET_TRUSTED_PROXIES` (NUM_PROXIES)
says, so a client cannot pick its own address to escape the limit.
"""

import hashlib
import logging

from django.conf import settings
from django.core.cache import cache as shared_cache
from django.core.cache.backends.locmem import LocMemCache
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from core import metrics

logger = logging.getLogger(__name__)


class FallbackCache:
    """The shared cache (Redis when configured), or process memory while it is down.

    A throttle that raises answers 500 to every login during a Redis outage;
    one that allows everything invites guessing. Counting in this process's
    memory meanwhile keeps each process's limit, at the cost of the shared one.
    """

    errors = (RedisError, OSError)

    def __init__(self) -> None:
        self.local = LocMemCache("authsocket-throttle-fallback", {})
        self.failing = False

    def get(self, key, default=None):
        try:
            value = shared_cache.get(key, default)
        except self.errors as exc:
            self._failed(exc)
            return self.local.get(key, default)
        self._recovered()
        return value

    def set(self, key, value, timeout=None) -> None:
        try:
            shared_cache.set(key, value, timeout)
        except self.errors as exc:
            self._failed(exc)
            self.local.set(key, value, timeout)
            return
        self._recovered()

    def _failed(self, exc: Exception) -> None:
        if not self.failing:
            logger.warning(
                "throttle cache unreachable (%s); counting in process memory",
                type(exc).__name__,
            )
        self.failing = True

    def _recovered(self) -> None:
        if self.failing:
            logger.warning("throttle cache recovered")
        self.failing = False


class SettingsRateThrottle(SimpleRateThrottle):
    """Reads its rate from our settings at call time.

    DRF's own throttles capture DEFAULT_THROTTLE_RATES at import, which makes
    them deaf to test overrides.
    """

    rate_setting = ""
    cache = FallbackCache()

    def get_rate(self) -> str:
        return getattr(settings, self.rate_setting)

    def throttle_failure(self) -> bool:
        metrics.throttled(self.scope)
        return super().throttle_failure()

    def wait(self) -> float:
        """Seconds until an attempt is allowed again; never None.

        DRF's answers None when the counter holds more attempts than the rate
        now allows (the setting was lowered, the counters kept in Redis), and
        its 429 then carries no `Retry-After`. Then an attempt is allowed again
        once all but `num_requests - 1` of the counted ones have aged out.
        """
        wait = super().wait()
        if wait is not None:
            return wait
        if self.num_requests < 1:
            return self.duration
        return self.history[self.num_requests - 1] + self.duration - self.now


def submitted_username(request) -> str:
    """The username a login attempt names: the API's JSON body or the admin form."""
    data = request.data if isinstance(request, Request) else request.POST
    username = data.get("username") if isinstance(data, dict) else None
    return username if isinstance(username, str) else ""


class LoginThrottle(SettingsRateThrottle):
    """Attempts per (username, client address): slows guessing one password."""

    scope = "login"
    rate_setting = "AUTHSOCKET_LOGIN_THROTTLE"

    def get_cache_key(self, request, view):
        username = submitted_username(request)
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


LOGIN_THROTTLES = (LoginAddressThrottle, LoginThrottle)


def login_attempt_wait(request) -> float | None:
    """Count one login attempt on the API login's counters; seconds to wait if over.

    For logins outside DRF (the admin form). As DRF's `check_throttles` does,
    every throttle is asked, so each counts the attempt unless it is over.
    """
    waits = []
    for throttle_class in LOGIN_THROTTLES:
        throttle = throttle_class()
        if not throttle.allow_request(request, None):
            waits.append(throttle.wait())
    return max(waits, default=None)


class TicketThrottle(SettingsRateThrottle):
    """WebSocket tickets per user."""

    scope = "ticket"
    rate_setting = "AUTHSOCKET_TICKET_THROTTLE"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class PasswordThrottle(SettingsRateThrottle):
    """Password-change attempts per user, right or wrong: no password oracle."""

    scope = "password"
    rate_setting = "AUTHSOCKET_PASSWORD_THROTTLE"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class ServiceKeyFailureThrottle(SettingsRateThrottle):
    """Failed service-key attempts per client address (valid keys never count).

    Asked by the server API's authentication itself, not as a DRF throttle:
    DRF authenticates before it throttles, so a throttle class would see a
    bad key only after it had been refused.
    """

    scope = "service_key_failure"
    rate_setting = "AUTHSOCKET_SERVICE_KEY_THROTTLE"

    def get_cache_key(self, request, view):
        return self.cache_format % {
            "scope": self.scope,
            "ident": self.get_ident(request),
        }
