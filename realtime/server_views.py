"""The server API for other backends (docs/protocol.md §7): thin DRF views.

Authenticated by a service key and nothing else: `ApiKeyAuthentication` is
the only authentication class here, so a user's JWT is "no credentials" (401
`not_authenticated`) and every 401 says `WWW-Authenticate: ApiKey`.
"""

import re

from django.contrib.auth import get_user_model
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from accounts.authentication import ApiKeyAuthentication
from accounts.errors import InvalidServiceKey
from accounts.models import ServiceKey
from accounts.revocation import user_sessions_revoke
from core.api_errors import ApiView
from core.openapi import ErrorSerializer
from realtime.presence.reads import connections_read
from realtime.serializers import (
    ConnectionsSerializer,
    MessageSerializer,
    PresenceSerializer,
    ServerPublishSerializer,
)
from realtime.server_api import (
    PublishForbidden,
    StreamNotFound,
    server_publish,
    server_publish_earlier,
    server_stream_resolve,
)
from realtime.views import HISTORY_PARAMETERS, history, presence

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,64}")
FIELD_WHITESPACE = " \t"
SERVER_API_REVOKE_REASON = "server_api"


class IsService(BasePermission):
    """Only a request authenticated by a service key."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, ServiceKey)


class ServerApiView(ApiView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsService]
    throttle_classes = []  # failed keys are throttled by the authentication


def idempotency_key(request) -> str | None:
    """The header's value; absent → None; not 1–64 printable ASCII → 400.

    Sent more than once → 400 too: Django joins repeated headers with ",",
    which a key may hold, so keys `a` and `b` would be taken for `a,b`.
    """
    if header_lines(request, IDEMPOTENCY_HEADER) > 1:
        raise exceptions.ValidationError(
            {IDEMPOTENCY_HEADER: ["Sent more than once; send one key."]}
        )
    value = request.headers.get(IDEMPOTENCY_HEADER)
    if value is None:
        return None
    # RFC 9110 §5.5: whitespace around a field value is not part of it. daphne
    # strips it already; a server that does not must not make ` k` a new key.
    value = value.strip(FIELD_WHITESPACE)
    if not IDEMPOTENCY_KEY.fullmatch(value):
        raise exceptions.ValidationError(
            {IDEMPOTENCY_HEADER: ["1 to 64 printable ASCII characters."]}
        )
    return value


def header_lines(request, name: str) -> int:
    """How many lines of header `name` the request came with.

    Counted in the ASGI scope, where daphne keeps each line; a WSGI server
    has joined them before Django sees them, so there it is at most 1.
    """
    scope = getattr(request, "scope", None)  # Django's ASGIRequest has one
    if scope is None:
        return int(name in request.headers)
    wanted = name.lower().encode("latin-1")
    return sum(header.lower() == wanted for header, _ in scope.get("headers", ()))


def resolved(name: str):
    try:
        return server_stream_resolve(name=name)
    except StreamNotFound:
        raise Http404 from None


class PublishView(ServerApiView):
    @extend_schema(
        request=ServerPublishSerializer,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                str,
                OpenApiParameter.HEADER,
                description=(
                    "At most 64 printable ASCII characters, in one header line "
                    "(two are 400 `invalid`). A repeat within 24 h "
                    "from the same service key answers 200 with the first message "
                    "and publishes nothing."
                ),
            )
        ],
        responses={
            201: MessageSerializer,
            200: MessageSerializer,
            # The stream is named in the body, not the path: say its 404 here.
            404: OpenApiResponse(
                ErrorSerializer, description="No such stream (code `not_found`)."
            ),
        },
    )
    def post(self, request):
        """Store a message (sender null) on any stream and deliver it live."""
        key = idempotency_key(request)
        earlier = key and server_publish_earlier(service_key=request.auth, key=key)
        if earlier:
            # Answered before the body is read: a repeat gets the first
            # message whatever it sends, in any media type (only a body sent
            # as JSON was already held to strict JSON, by ApiView).
            return Response(earlier, status=status.HTTP_200_OK)
        body = ServerPublishSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            answer, created = server_publish(
                service_key=request.auth,
                name=body.validated_data["stream"],
                data=body.validated_data["data"],
                idempotency_key=key,
            )
        except StreamNotFound:
            raise Http404 from None
        except PublishForbidden:
            raise exceptions.PermissionDenied(
                "This stream takes no publishes from the server API."
            ) from None
        except InvalidServiceKey as exc:
            raise exceptions.AuthenticationFailed(exc.detail, code=exc.code) from None
        return Response(
            answer, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class StreamMessagesView(ServerApiView):
    @extend_schema(
        parameters=HISTORY_PARAMETERS, responses=MessageSerializer(many=True)
    )
    def get(self, request, stream: str):
        """A stream's stored messages, paged as for rooms; names in full."""
        target = resolved(stream).stream
        if not target.keeps_history:
            raise Http404
        return history(request, target, full_names=True)


class UserRevokeSerializer(serializers.Serializer):
    revoked = serializers.IntegerField(help_text="Sessions revoked.")


class UserRevokeView(ServerApiView):
    @extend_schema(request=None, responses=UserRevokeSerializer)
    def post(self, request, user_id: int):
        """Revoke every session of the user; his sockets close with 4403."""
        if not get_user_model().objects.filter(pk=user_id).exists():
            raise Http404
        sids = user_sessions_revoke(user_id=user_id, reason=SERVER_API_REVOKE_REASON)
        return Response({"revoked": len(sids)})


class StreamPresenceView(ServerApiView):
    @extend_schema(responses=PresenceSerializer)
    def get(self, request, stream: str):
        """Who is subscribed to the stream now, on every process; names in full."""
        target = resolved(stream).stream
        if not target.keeps_presence:
            raise Http404
        return presence(request, target)


class UserConnectionsView(ServerApiView):
    @extend_schema(responses=ConnectionsSerializer)
    def get(self, request, user_id: int):
        """The user's live sockets now, per session, on every process."""
        if not get_user_model().objects.filter(pk=user_id).exists():
            raise Http404
        return Response(connections_read(user_id=user_id).payload())
