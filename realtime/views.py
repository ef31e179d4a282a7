"""The streams HTTP API (docs/protocol.md §2): thin DRF views over the services.

Who may do what comes from realtime.permissions: a room the user may not see
is a 404 whether or not it exists; a visible room he may not post in is 403.
`/api/streams/<stream>/messages` and `.../presence` serve every kind alike:
404 for a stream the user may not read, whatever the reason, and for a kind
without history (or presence).
"""

import contextlib

from django.contrib.auth import get_user_model
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from accounts.authentication import AuthenticationFailed
from core.api_errors import ApiView
from realtime import services
from realtime.lost_rows import UserGone
from realtime.messages import message_frame
from realtime.models import Room
from realtime.permissions import (
    Access,
    Action,
    Decision,
    may_notify,
    room_access,
    stream_access,
)
from realtime.presence.reads import presence_read
from realtime.publish import publish_to_room, publish_to_user
from realtime.selectors import messages_after, messages_latest, rooms_readable
from realtime.serializers import (
    HistoryQuerySerializer,
    MessageSerializer,
    PresenceSerializer,
    PublishSerializer,
    RoomSerializer,
)
from realtime.streams import (
    Stream,
    room_stream,
    slug_is_valid,
    stream_parse,
    user_stream,
)


class IsNotifier(BasePermission):
    message = "Only staff may notify users."

    def has_permission(self, request, view) -> bool:
        return may_notify(request.user)


@contextlib.contextmanager
def lost_rows_answered():
    """A write whose room or user was deleted meanwhile (realtime.lost_rows):
    404 as for any missing room, 401 `revoked` as for a deleted user's token."""
    try:
        yield
    except Room.DoesNotExist as exc:
        raise Http404 from exc
    except UserGone as exc:
        raise AuthenticationFailed(exc.detail, code=exc.code) from exc


def room_decision(request, slug: str, action: Action) -> Decision:
    """404 for what the user may not see, 403 for a visible room he may not use."""
    if not slug_is_valid(slug):
        raise Http404
    decision = room_access(user=request.user, slug=slug, action=action)
    if decision.access is Access.HIDDEN:
        raise Http404
    if decision.access is Access.FORBIDDEN:
        raise exceptions.PermissionDenied("Join the room to post in it.")
    return decision


def readable_stream(request, name: str) -> Stream:
    """The stream named, if the caller may read it; else 404, as for a stream
    that does not exist (existence never leaks)."""
    parsed = stream_parse(name, user_id=request.user.pk)
    if parsed is None:
        raise Http404
    if not stream_access(user=request.user, stream=parsed, action=Action.READ).allowed:
        raise Http404
    return parsed


def history(request, stream: Stream, *, full_names: bool = False) -> Response:
    query = HistoryQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    limit, after = query.validated_data["limit"], query.validated_data.get("after")
    if after is None:
        messages = messages_latest(stream=stream, limit=limit)
    else:
        messages = messages_after(stream=stream, after=after, limit=limit)
    return Response(
        [message_frame(message, full_name=full_names) for message in messages]
    )


def presence(request, stream: Stream) -> Response:
    """The §4.4 snapshot without `type`; `stream` is the full name. Like a
    subscriber's, it lists the caller when he is on the stream."""
    snapshot = presence_read(stream=stream.name, include=request.user.pk)
    return Response({"stream": stream.name, **snapshot.payload()})


def published_data(request):
    body = PublishSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    return body.validated_data["data"]


HISTORY_PARAMETERS = [
    OpenApiParameter("after", int, description="Only messages with a larger id."),
    OpenApiParameter("limit", int, description="1–200, default 50."),
]


class RoomListView(ApiView):
    @extend_schema(responses=RoomSerializer(many=True))
    def get(self, request):
        rooms = rooms_readable(user=request.user)
        return Response(RoomSerializer(rooms, many=True).data)


class MembershipView(ApiView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request, slug: str):
        """Join a public room (idempotent)."""
        room = room_decision(request, slug, Action.JOIN).room
        with lost_rows_answered():
            services.membership_create(user=request.user, room=room)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, slug: str):
        """Leave (also when not a member); live subscriptions that needed it end."""
        room = room_decision(request, slug, Action.READ).room
        services.membership_delete(user=request.user, room=room)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoomMessagesView(ApiView):
    @extend_schema(
        parameters=HISTORY_PARAMETERS, responses=MessageSerializer(many=True)
    )
    def get(self, request, slug: str):
        room_decision(request, slug, Action.READ)
        return history(request, room_stream(slug))

    @extend_schema(request=PublishSerializer, responses={201: MessageSerializer})
    def post(self, request, slug: str):
        room = room_decision(request, slug, Action.PUBLISH).room
        with lost_rows_answered():
            message = publish_to_room(
                room=room, sender=request.user, data=published_data(request)
            )
        return Response(message_frame(message), status=status.HTTP_201_CREATED)


class UserMessagesView(ApiView):
    """History of the caller's own `user` stream (anyone else's: 404)."""

    @extend_schema(
        parameters=HISTORY_PARAMETERS, responses=MessageSerializer(many=True)
    )
    def get(self, request, user_id: int):
        if user_id != request.user.pk:
            raise Http404
        return history(request, user_stream(user_id))


class UserNotifyView(ApiView):
    permission_classes = [IsNotifier]

    @extend_schema(request=PublishSerializer, responses={201: MessageSerializer})
    def post(self, request, user_id: int):
        """Store a server notification on that user's stream and deliver it live."""
        user = get_user_model().objects.filter(pk=user_id).first()
        if user is None:
            raise Http404
        message = publish_to_user(user=user, data=published_data(request), sender=None)
        return Response(message_frame(message), status=status.HTTP_201_CREATED)


class StreamMessagesView(ApiView):
    """History of any stream the caller may read, by its name (`user` too)."""

    @extend_schema(
        parameters=HISTORY_PARAMETERS, responses=MessageSerializer(many=True)
    )
    def get(self, request, stream: str):
        parsed = readable_stream(request, stream)
        if not parsed.keeps_history:
            raise Http404
        return history(request, parsed)


class RoomPresenceView(ApiView):
    @extend_schema(responses=PresenceSerializer)
    def get(self, request, slug: str):
        """Who is subscribed to the room now, on every process."""
        room_decision(request, slug, Action.READ)
        return presence(request, room_stream(slug))


class StreamPresenceView(ApiView):
    @extend_schema(responses=PresenceSerializer)
    def get(self, request, stream: str):
        """Who is subscribed now to any stream the caller may read, by its name."""
        parsed = readable_stream(request, stream)
        if not parsed.keeps_presence:
            raise Http404
        return presence(request, parsed)
