"""The admin's "connected now": live sockets per user and per session, on every
process, read from the registry of live sockets (realtime/presence).

In a Redis outage the registry answers from this process's sockets alone
(`SocketRegistry.degraded`); the page then says so rather than claim every
process.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from accounts.models import AuthSession
from realtime.presence.reads import connected_read


def connected_now_view(request):
    """Read-only; for whoever the admin shows login sessions to.

    Asked of the sessions' own ModelAdmin: there the permission to change
    them implies the one to view them, which `has_perm` alone would miss.
    """
    sessions_admin = admin.site.get_model_admin(AuthSession)
    if not sessions_admin.has_view_permission(request):
        raise PermissionDenied
    rows, degraded = connected_read()
    context = {
        **admin.site.each_context(request),
        "title": "Connected now",
        "rows": rows,
        "sockets": sum(row.connections for row in rows),
        "degraded": degraded,
    }
    return TemplateResponse(request, "admin/connected_now.html", context)
