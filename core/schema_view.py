"""`GET /api/schema/`: the OpenAPI schema, whatever the query string says.

Apart from core.openapi, which drf-spectacular's views import themselves
(it is the DEFAULT_SCHEMA_CLASS).
"""

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView


class SchemaView(SpectacularAPIView):
    """drf-spectacular's schema view, deaf to `?version=` and `?lang=`.

    It copied any `?version=` into the schema and into its Content-Disposition
    header, where a line break is a 500; and it translated into any `?lang=`,
    each new value kept in Django's translation cache for good. The schema
    has one version, in one language.
    """

    @extend_schema(exclude=True)  # as drf-spectacular's (SERVE_INCLUDE_SCHEMA)
    def get(self, request, *args, **kwargs):
        return self._get_schema_response(request)  # without the `lang` branch

    def _get_version_parameter(self, request):
        return None  # SPECTACULAR_SETTINGS["VERSION"] only
