"""A chunked request body gets the Content-Length that Django and DRF look for.

daphne de-chunks a `Transfer-Encoding: chunked` body and hands it on with no
Content-Length. Django reads `request.body` all the same, but DRF takes a
request without one for a request without a body: a chunked login was 400
"this field is required", and a chunked logout with `NaN` logged out (204)
where any other is 400 `parse_error`. The body is already whole in Django's
spooled file by then: its size is what the header would have said, and
DATA_UPLOAD_MAX_MEMORY_SIZE then bounds it as it bounds any other.
"""

import os

from django.core.handlers.asgi import ASGIRequest


class ChunkedBodyLength:
    """Sets CONTENT_LENGTH from the received body when the request had none."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "CONTENT_LENGTH" not in request.META:
            size = _received_size(request)
            if size:
                request.META["CONTENT_LENGTH"] = str(size)
        return self.get_response(request)


def _received_size(request) -> int:
    """Bytes of body left to read in an ASGI request's spooled body file."""
    if not isinstance(request, ASGIRequest):
        return 0  # a WSGI server de-chunks into a stream with a length, or not
    stream = request._stream  # the spooled file the body was received into
    if not stream.seekable():
        return 0
    here = stream.tell()
    size = stream.seek(0, os.SEEK_END)
    stream.seek(here)
    return size - here
