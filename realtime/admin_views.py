"""The admin's "connected now": live sockets per user and per session, on every
process, read from the registry of live sockets (realtime/presence)."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from realtime.presence.reads import connected_read

VIEW_PERMISSION = "accounts.view_authsession"


def connected_now_view(request):
    """Read-only; needs the permission to view login sessions."""
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    rows = connected_read()
    context = {
        **admin.site.each_context(request),
        "title": "Connected now",
        "rows": rows,
        "sockets": sum(row.connections for row in rows),
    }
    return TemplateResponse(request, "admin/connected_now.html", context)
