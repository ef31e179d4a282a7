"""One error shape for the whole HTTP API: `{"detail", "code"}` (docs/protocol.md §2).

DRF's default handler answers with `{"detail": ...}` only, and Django answers
unknown URLs with an HTML page; both are normalized here so that clients can
switch on `code` and never parse HTML.
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponseBase, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler


class ApiError(exceptions.APIException):
    """An API error with an explicit status and wire `code`."""

    def __init__(self, detail: str, code: str, status_code: int = 400):
        self.status_code = status_code
        super().__init__(detail=detail, code=code)


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


_JSON_ERRORS = {400: json_400, 403: json_403, 404: json_404, 500: json_500}


class JsonErrorsUnderApi:
    """Under /api/, an HTML error page becomes the API's JSON error.

    Outside debug the `handler400` … `handler500` above answer already. In
    debug, Django answers a suspicious request (a `Host` not allowed, a body
    over `DATA_UPLOAD_MAX_MEMORY_SIZE`) with its HTML debug page, which a
    client switching on `code` cannot read. Outermost in MIDDLEWARE, so it
    sees what every other middleware answered; the headers they set stay.
    """

    sync_capable = async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if iscoroutinefunction(self):
            return self._acall(request)
        return as_json_error(request, self.get_response(request))

    async def _acall(self, request: HttpRequest):
        return as_json_error(request, await self.get_response(request))


def as_json_error(request: HttpRequest, response: HttpResponseBase):
    """`response`, or its JSON equivalent when it is an HTML error under /api/."""
    if (
        response.status_code < 400
        or not request.path_info.startswith("/api/")
        or not response.get("Content-Type", "").startswith("text/html")
    ):
        return response
    answer = _JSON_ERRORS.get(response.status_code)
    if answer is None:
        json_error = JsonResponse(
            {"detail": response.reason_phrase, "code": "error"},
            status=response.status_code,
        )
    else:
        json_error = answer(request)
    for header, value in response.items():
        if header.lower() not in ("content-type", "content-length"):
            json_error[header] = value
    return json_error
