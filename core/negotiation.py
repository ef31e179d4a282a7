"""Content negotiation that never answers 406 (docs/protocol.md §2).

DRF refuses a request whose `Accept` names none of the view's renderers with
406, and does so before it authenticates: `Accept: text/html` on `/api/me`
hid the 401 a client needs, and `Accept: application/json` (many JSON
clients' default) refused the `/api/docs/` page. RFC 9110 §12.5.1 lets a
server send its default representation instead, which is what such a request
gets: the view's first renderer. An unknown `?format=` stays DRF's 404.

And a body's `Content-Type` with a wildcard (`*/*`) is refused 415, where DRF
took it for JSON.
"""

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation


class DefaultRendererFallback(DefaultContentNegotiation):
    """DRF's negotiation, with the view's first renderer when `Accept` fits none."""

    def select_parser(self, request, parsers):
        """None (415) for a Content-Type with a wildcard: DRF matches `*/*` or
        `application/*` to its JSON parser, but a body names its own type."""
        if "*" in request.content_type.split(";")[0]:
            return None
        return super().select_parser(request, parsers)

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            renderer = renderers[0]
            return renderer, renderer.media_type
