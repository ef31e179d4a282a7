"""Request and response shapes of the streams API (docs/protocol.md §2, §4.2)."""

import re

from rest_framework import serializers

from accounts.serializers import UserRefSerializer
from realtime.messages import InvalidData, data_check

MAX_PAGE = 200
DEFAULT_PAGE = 50
ASCII_DIGITS = re.compile(r"[0-9]+")


class RoomSerializer(serializers.Serializer):
    slug = serializers.CharField()
    title = serializers.CharField()
    public = serializers.BooleanField()
    member = serializers.BooleanField(source="is_member")


class MessageSerializer(serializers.Serializer):
    """Documents the §4.2 `message` frame; realtime.messages builds it."""

    type = serializers.CharField(default="message")
    stream = serializers.CharField()
    id = serializers.IntegerField()
    sender = UserRefSerializer(allow_null=True)
    data = serializers.JSONField()
    ts_ms = serializers.IntegerField()


class PublishSerializer(serializers.Serializer):
    data = serializers.JSONField(allow_null=True, help_text="Any JSON value.")

    def validate_data(self, value):
        try:
            data_check(value)
        except InvalidData as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return value

    def to_internal_value(self, data):
        # JSONField treats a missing key with a null body oddly; be explicit.
        if not isinstance(data, dict) or "data" not in data:
            raise serializers.ValidationError({"data": ["This field is required."]})
        return super().to_internal_value(data)


class QueryInteger(serializers.IntegerField):
    """ASCII digits only: `int()` alone also takes `1_0`, ` 1`, `1.0` or `٣`.

    An empty value (`?after=`) is a bad value, not an absent one: DRF reads a
    blank form field as missing, which would answer the latest page instead.
    """

    def get_value(self, dictionary):
        if self.field_name in dictionary and dictionary[self.field_name] == "":
            return ""
        return super().get_value(dictionary)

    def to_internal_value(self, data):
        if isinstance(data, str) and not ASCII_DIGITS.fullmatch(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class HistoryQuerySerializer(serializers.Serializer):
    after = QueryInteger(min_value=0, required=False)
    limit = QueryInteger(min_value=1, max_value=MAX_PAGE, default=DEFAULT_PAGE)


class ServerPublishSerializer(PublishSerializer):
    """A name that is a string but no stream's is the view's 404, not a 400."""

    stream = serializers.CharField(
        trim_whitespace=False,
        allow_blank=True,
        help_text="In full: `room:<slug>` or `user:<id>`.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any string: one with a NUL or a surrogate names no stream (404),
        # it is not a malformed body (400).
        self.fields["stream"].validators = []

    def to_internal_value(self, data):
        if isinstance(data, dict) and not isinstance(data.get("stream"), str):
            message = "A string is required." if "stream" in data else None
            raise serializers.ValidationError(
                {"stream": [message or "This field is required."]}
            )
        return super().to_internal_value(data)


class PresentUserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    connections = serializers.IntegerField(help_text="His sockets on the stream.")


class PresenceSerializer(serializers.Serializer):
    """Documents a presence snapshot (docs/protocol.md §4.4, without `type`)."""

    stream = serializers.CharField(help_text="In full: `room:<slug>`, …")
    users = PresentUserSerializer(many=True, help_text="At most 1,000, lowest ids.")
    count = serializers.IntegerField(help_text="Users on the stream, in total.")
    truncated = serializers.BooleanField(
        required=False, help_text="Present (true) only when `users` was cut."
    )


class SessionConnectionsSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The session id (`sid`).")
    connections = serializers.IntegerField()


class ConnectionsSerializer(serializers.Serializer):
    """A user's live sockets now, on every process."""

    connections = serializers.IntegerField()
    sessions = SessionConnectionsSerializer(many=True)
