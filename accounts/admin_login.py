"""The Django admin's login form, on the same throttles as `POST /api/auth/login`.

Without this the admin form was an unthrottled way to guess any staff
password. Only POSTs count; over a limit even the right password gets 429.
"""

import math

from django.contrib import admin
from django.http import HttpResponse
from django.views.decorators.cache import never_cache

from accounts.throttles import login_attempt_wait


@never_cache
def throttled_admin_login(request, extra_context=None):
    """`admin.site.login`, behind the login throttles (wired in authsocket/urls.py)."""
    if request.method == "POST":
        wait = login_attempt_wait(request)
        if wait is not None:
            return too_many_attempts(wait)
    return admin.site.login(request, extra_context)


def too_many_attempts(wait: float) -> HttpResponse:
    """A plain 429 (the admin is not under /api/) with `Retry-After`."""
    seconds = max(1, math.ceil(wait))
    response = HttpResponse(
        f"Too many login attempts. Try again in {seconds} seconds.\n",
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(seconds)
    return response
