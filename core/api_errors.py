"""One error shape for the whole HTTP API: `{"detail", "code"}` (docs/protocol.md §2).

DRF's default handler answers with `{"detail": ...}` only, and Django answers
unknown URLs with an HTML page; both are normalized here so that clients can
switch on `code` and never parse HTML.
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponseBase, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler


class ApiError(exceptions.APIException):
    """An API error with an explicit status and wire `code`."""

    def __init__(self, detail: str, code: str, status_code: int = 400):
        self.status_code = status_code
        super().__init__(detail=detail, code=code)


class ApiView(APIView):
    """The project's API views: a method a view does not serve is 405, first.

    DRF authenticates, checks permissions and throttles before it looks for
    the method's handler, so `PUT /api/me` without a token answered 401 and a
    wrong method on a staff-only view 403. A wrong method is 405
    `method_not_allowed` whoever asks (docs/protocol.md §2).
    """

    def initial(self, request, *args, **kwargs) -> None:
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)
        _parse_json_body(request)


def _parse_json_body(request) -> None:
    """A body sent as JSON is strict JSON or 400 `parse_error`, read or not.

    DRF parses lazily, so a view that ignores its body (logout, ticket,
    joining a room) acted on `NaN` or a truncated document with 204 or 200
    where docs/protocol.md §2 answers every non-strict body with 400. After
    authentication, permissions and throttles, so their answers come first.
    """
    media_type = request.content_type.split(";")[0].strip().lower()
    if media_type == "application/json" or "*" in media_type:
        request.data  # noqa: B018 - parsing is the point: ParseError, or 415


def _first_code(detail) -> str:
    if isinstance(detail, list) and detail:
        return _first_code(detail[0])
    if isinstance(detail, dict) and detail:
        return _first_code(next(iter(detail.values())))
    return getattr(detail, "code", None) or "error"


def _messages(detail) -> dict:
    """Flatten DRF's nested validation detail into `{field: [messages]}`."""
    if isinstance(detail, dict):
        return {
            field: [str(m) for m in (value if isinstance(value, list) else [value])]
            for field, value in detail.items()
        }
    return {"non_field_errors": [str(m) for m in detail]}


def exception_handler(exc, context):
    # DRF converts these to NotFound/PermissionDenied only inside its own
    # handler; without this, `raise Http404` in a view answered `{"detail"}`
    # with no `code`.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, SuspiciousOperation):
        # Too many query fields, a body over the upload limit: the client's
        # doing. Left to Django, DEBUG turned them into an AttributeError.
        exc = ApiError("Bad request.", "bad_request")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "detail": "Invalid input.",
            "code": "invalid",
            "errors": _messages(exc.detail),
        }
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        if isinstance(detail, (list, dict)):
            code = _first_code(detail)
            detail = "Invalid request."
        else:
            code = getattr(detail, "code", None) or exc.default_code
        if isinstance(exc, exceptions.Throttled):
            code = "throttled"
        elif isinstance(exc, exceptions.NotFound):
            code = "not_found"
        elif (
            isinstance(exc, exceptions.PermissionDenied) and code == "permission_denied"
        ):
            code = "forbidden"
        response.data = {"detail": str(detail), "code": code}
    # DRF names the view's own scheme (ApiKey on /api/server/); a 401 raised
    # by a view itself (a failed login) is the user API's: Bearer.
    if (
        response.status_code == status.HTTP_401_UNAUTHORIZED
        and "WWW-Authenticate" not in response
    ):
        response["WWW-Authenticate"] = "Bearer"
    return response


@csrf_exempt  # else a POST answers Django's HTML CSRF page (403), not this 404
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Catch-all for unknown /api/ paths, whatever the method."""
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)


def json_404(request, exception: Exception | None = None) -> JsonResponse:
    """The project serves no HTML error pages: every 404 is JSON."""
    return api_not_found(request)


def json_500(request) -> JsonResponse:
    return JsonResponse(
        {"detail": "Internal server error.", "code": "server_error"}, status=500
    )


def json_400(request, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "Bad request.", "code": "bad_request"}, status=400)


def json_403(request, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "Forbidden.", "code": "forbidden"}, status=403)


# The codes of docs/protocol.md §2 for what Django or a third-party view
# answered as a page (the API's own views answer JSON with a finer code).
_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "bad_request",
    415: "unsupported_media_type",
    429: "throttled",
    500: "server_error",
}


class JsonErrorsUnderApi:
    """Under /api/, every error is JSON `{"detail", "code"}`, in debug too.

    Outside debug the `handler400` … `handler500` above answer already. In
    debug, Django answers a suspicious request (a `Host` not allowed, a body
    over `DATA_UPLOAD_MAX_MEMORY_SIZE`) with its HTML debug page, and with
    too many query fields that page itself fails and the request ends in a
    bare 500. The schema and docs views answer their errors as YAML or HTML.
    Outermost in MIDDLEWARE, so it sees what every other middleware
    answered; the headers they set (`Allow`, `WWW-Authenticate`,
    `Retry-After`, security headers) stay.
    """

    sync_capable = async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if iscoroutinefunction(self):
            return self._acall(request)
        try:
            response = self.get_response(request)
        except SuspiciousOperation:
            if not _under_api(request):
                raise
            response = json_400(request)
        return as_json_error(request, response)

    async def _acall(self, request: HttpRequest):
        try:
            response = await self.get_response(request)
        except SuspiciousOperation:  # its debug page failed: see above
            if not _under_api(request):
                raise
            response = json_400(request)
        return as_json_error(request, response)


def _under_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def as_json_error(request: HttpRequest, response: HttpResponseBase):
    """`response`, or its JSON equivalent when it is an error under /api/ that
    is not JSON."""
    if (
        response.status_code < 400
        or not _under_api(request)
        or response.get("Content-Type", "").startswith("application/json")
    ):
        return response
    code = _CODES.get(response.status_code, "error")
    json_error = JsonResponse(
        {"detail": response.reason_phrase + ".", "code": code},
        status=response.status_code,
    )
    for header, value in response.items():
        if header.lower() not in ("content-type", "content-length"):
            json_error[header] = value
    return json_error
