"""One error shape for the whole HTTP API: `{"detail", "code"}` (docs/protocol.md §2).

DRF's default handler answers with `{"detail": ...}` only, and Django answers
unknown URLs with an HTML page; both are normalized here so that clients can
switch on `code` and never parse HTML.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
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
