"""URL map: the API under /api/, admin, the browser demo at /."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView, TemplateView
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from accounts.admin_login import throttled_admin_login, throttled_admin_password_change
from accounts.views import JwksView
from core import api_errors
from core.schema_view import SchemaView
from realtime.admin_views import connected_now_view

PUBLIC = {"authentication_classes": [], "permission_classes": [AllowAny]}

api_patterns = [
    path("", include("accounts.urls")),
    path("", include("realtime.urls")),
    path("server/", include("realtime.server_urls")),
    # Public (docs/protocol.md §2: no auth): a bad Bearer header is ignored.
    path("schema/", SchemaView.as_view(**PUBLIC), name="schema"),
    # Swagger UI with its init script at its own URL (?script): no inline script.
    # A page, read only: OPTIONS is 405 like any other method (DRF's OPTIONS
    # answer went through the page's template renderer: 500).
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="schema",
            template_name="api/docs.html",
            http_method_names=["get", "head"],
            **PUBLIC,
        ),
        name="api-docs",
    ),
    path("docs", RedirectView.as_view(pattern_name="api-docs", permanent=True)),
    # Anything else under /api/ is a JSON 404, never Django's HTML page.
    re_path(r"^.*$", api_errors.api_not_found),
]

urlpatterns = [
    path("api/", include(api_patterns)),
    path(".well-known/jwks.json", JwksView.as_view(), name="jwks"),
    # Before the admin's own login/ so that the form counts on the login throttles.
    path("admin/login/", throttled_admin_login),
    # The same for the password-change form, on the API's password throttle.
    path(
        "admin/password_change/",
        admin.site.admin_view(throttled_admin_password_change, cacheable=True),
    ),
    path(
        "admin/connected/",
        admin.site.admin_view(connected_now_view),
        name="admin-connected-now",
    ),
    path("admin/", admin.site.urls),
    path("", TemplateView.as_view(template_name="index.html"), name="demo"),
]

handler400 = "core.api_errors.json_400"
handler403 = "core.api_errors.json_403"
handler404 = "core.api_errors.json_404"
handler500 = "core.api_errors.json_500"
