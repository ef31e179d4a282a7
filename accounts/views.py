"""The accounts HTTP API: thin DRF views over accounts.services."""

import ipaddress
import time

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.cache import add_never_cache_headers
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from accounts import services
from accounts.errors import AuthError, InvalidCredentials, WrongPassword
from accounts.models import AuthSession
from accounts.serializers import (
    LoginSerializer,
    MeSerializer,
    PasswordChangeSerializer,
    RefreshSerializer,
    SessionSerializer,
    TicketSerializer,
    TokenPairSerializer,
)
from accounts.throttles import LOGIN_THROTTLES, PasswordThrottle, TicketThrottle
from accounts.tokens import public_jwks
from core.api_errors import ApiError, ApiView

COOKIE_MODE_HEADER = "HTTP_X_AUTHSOCKET_COOKIE"
COOKIE_PATH = "/api/auth/"


def auth_failed(error: AuthError) -> ApiError:
    """Map a service error to its 401 (or 400) answer."""
    status_code = 400 if isinstance(error, WrongPassword) else 401
    return ApiError(error.detail, error.code, status_code)


def wants_cookie(request) -> bool:
    """The custom header is the CSRF guard: other sites cannot send it."""
    return request.META.get(COOKIE_MODE_HEADER) == "1"


def credential_response(body: dict) -> Response:
    """An answer that carries a credential: no cache or proxy may keep it
    (`Cache-Control: no-store`, as RFC 6749 §5.1 asks of token answers)."""
    response = Response(body)
    add_never_cache_headers(response)
    return response


def token_response(request, issued: services.IssuedTokens) -> Response:
    body = {
        "access": issued.access,
        "refresh": issued.refresh,
        "token_type": "Bearer",
        "expires_in": issued.access_lifetime,
        "user": {"id": issued.user.pk, "username": issued.user.username},
    }
    if not wants_cookie(request):
        return credential_response(body)
    del body["refresh"]
    response = credential_response(body)
    response.set_cookie(
        settings.AUTHSOCKET_REFRESH_COOKIE,
        issued.refresh,
        max_age=max(0, int(issued.session.expires_at.timestamp() - time.time())),
        path=COOKIE_PATH,
        secure=not settings.DEBUG,
        httponly=True,
        samesite="Strict",
    )
    return response


def clear_cookie(response: Response) -> Response:
    response.delete_cookie(
        settings.AUTHSOCKET_REFRESH_COOKIE, path=COOKIE_PATH, samesite="Strict"
    )
    return response


def client_address(request) -> str | None:
    """The client's IP as the throttles see it (proxy-aware), if it parses."""
    address = BaseThrottle().get_ident(request)
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        return None


class LoginView(ApiView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = list(LOGIN_THROTTLES)  # shared with the admin's login form

    @extend_schema(request=LoginSerializer, responses=TokenPairSerializer)
    def post(self, request):
        data = LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            issued = services.session_login(
                request=request._request,
                username=data.validated_data["username"],
                password=data.validated_data["password"],
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
                client_address=client_address(request),
            )
        except InvalidCredentials as exc:
            raise auth_failed(exc) from exc
        return token_response(request, issued)


class RefreshView(ApiView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(request=RefreshSerializer, responses=TokenPairSerializer)
    def post(self, request):
        refresh = self._refresh_token(request)
        try:
            issued = services.session_refresh(refresh_token=refresh)
        except AuthError as exc:
            raise auth_failed(exc) from exc
        return token_response(request, issued)

    def _refresh_token(self, request) -> str:
        if wants_cookie(request):
            token = request.COOKIES.get(settings.AUTHSOCKET_REFRESH_COOKIE)
            if not token:
                raise ApiError("No refresh cookie.", "not_authenticated", 401)
            return token
        data = RefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if "refresh" not in data.validated_data:
            raise exceptions.ValidationError({"refresh": ["This field is required."]})
        return data.validated_data["refresh"]


class LogoutView(ApiView):
    """Revoke the current session; in cookie mode the refresh cookie also works.

    In cookie mode a Bearer token that fails (expired, most often) leaves the
    cookie to decide, so a tab whose access token expired can still sign out,
    and every answer clears the cookie (docs/protocol.md §2.4).
    """

    permission_classes = [AllowAny]

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        session = self._session(request)
        services.session_logout(session=session)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def perform_authentication(self, request) -> None:
        try:
            super().perform_authentication(request)
        except exceptions.AuthenticationFailed:
            if self._cookie_session(request) is None:
                raise

    def finalize_response(self, request, response, *args, **kwargs):
        """Every answer, errors included, as `dispatch` finalizes them all."""
        response = super().finalize_response(request, response, *args, **kwargs)
        return clear_cookie(response) if wants_cookie(request) else response

    def _session(self, request) -> AuthSession:
        if request.auth is not None:
            return request.auth.session
        session = self._cookie_session(request)
        if session is None:
            raise exceptions.NotAuthenticated()
        return session

    def _cookie_session(self, request) -> AuthSession | None:
        cookie = request.COOKIES.get(settings.AUTHSOCKET_REFRESH_COOKIE)
        if wants_cookie(request) and cookie:
            return services.session_for_refresh_token(cookie)
        return None


class LogoutOthersView(ApiView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        services.session_logout_others(session=request.auth.session)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(ApiView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        services.session_logout_all(user=request.user)
        response = Response(status=status.HTTP_204_NO_CONTENT)
        return clear_cookie(response) if wants_cookie(request) else response


class SessionListView(ApiView):
    @extend_schema(responses=SessionSerializer(many=True))
    def get(self, request):
        sessions = AuthSession.objects.live().filter(user=request.user)
        context = {"current_sid": request.auth.session.sid}
        return Response(SessionSerializer(sessions, many=True, context=context).data)


class SessionDetailView(ApiView):
    @extend_schema(responses={204: None})
    def delete(self, request, sid: str):
        if not services.session_delete(user=request.user, sid=sid):
            raise Http404
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(ApiView):
    throttle_classes = [PasswordThrottle]

    @extend_schema(request=PasswordChangeSerializer, responses={204: None})
    def post(self, request):
        data = PasswordChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            services.password_change(
                session=request.auth.session,
                old_password=data.validated_data["old_password"],
                new_password=data.validated_data["new_password"],
            )
        except AuthError as exc:  # wrong_password, or revoked meanwhile
            raise auth_failed(exc) from exc
        except DjangoValidationError as exc:
            raise exceptions.ValidationError({"new_password": exc.messages}) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class TicketView(ApiView):
    throttle_classes = [TicketThrottle]

    @extend_schema(request=None, responses=TicketSerializer)
    def post(self, request):
        try:
            ticket, ttl = services.ticket_issue(
                session=request.auth.session, access_expires_at=request.auth.claims.exp
            )
        except AuthError as exc:  # revoked or deleted meanwhile
            raise auth_failed(exc) from exc
        return credential_response({"ticket": ticket, "expires_in": ttl})


class MeView(ApiView):
    @extend_schema(responses=MeSerializer)
    def get(self, request):
        return Response(MeSerializer(request.user).data)


class JwksView(ApiView):
    """Public keys for other services verifying our tokens (asymmetric only)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: dict})
    def get(self, request):
        jwks = public_jwks()
        if jwks is None:
            raise Http404
        return Response(jwks)
