"""The Django admin's password forms, on the same throttles as the API's.

Without them, the login form was an unthrottled way to guess any staff
password, and the password-change form one to guess a signed-in staff
member's (whoever held his session cookie). Only POSTs count; over a limit
even the right password gets 429.
"""

import math

from django.contrib import admin
from django.http import HttpResponse
from django.views.decorators.cache import never_cache

from accounts.throttles import PasswordThrottle, login_attempt_wait


@never_cache
def throttled_admin_login(request, extra_context=None):
    """`admin.site.login`, behind the login throttles (wired in authsocket/urls.py)."""
    if request.method == "POST":
        wait = login_attempt_wait(request)
        if wait is not None:
            return too_many_attempts(wait)
    return admin.site.login(request, extra_context)


@never_cache
def throttled_admin_password_change(request, extra_context=None):
    """`admin.site.password_change` (staff only: wrapped in `admin_view` in
    authsocket/urls.py), on the counter of `POST /api/auth/password`: per
    user, right or wrong, so the form tells no old password apart faster."""
    if request.method == "POST":
        throttle = PasswordThrottle()
        if not throttle.allow_request(request, None):
            return too_many_attempts(throttle.wait() or 1, "password changes")
    return admin.site.password_change(request, extra_context)


def too_many_attempts(wait: float, what: str = "login attempts") -> HttpResponse:
    """A plain 429 (the admin is not under /api/) with `Retry-After`."""
    seconds = max(1, math.ceil(wait))
    response = HttpResponse(
        f"Too many {what}. Try again in {seconds} seconds.\n",
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(seconds)
    return response
