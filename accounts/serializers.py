"""Request and response shapes of the accounts API (docs/protocol.md §2)."""

from rest_framework import serializers


class TextField(serializers.CharField):
    """A CharField that also refuses text UTF-8 cannot encode (lone surrogates).

    JSON allows `"\\ud800"`; passed on, it would crash the password hasher or
    the database driver with a 500.
    """

    default_error_messages = {"encoding": "Not valid Unicode text."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.fail("encoding")
        return value


class StrictStringField(TextField):
    """Only real JSON strings: DRF's CharField would turn 123 into "123"."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class LoginSerializer(serializers.Serializer):
    username = StrictStringField(max_length=150, trim_whitespace=False)
    password = StrictStringField(max_length=4096, trim_whitespace=False)


class CredentialField(serializers.CharField):
    """Any JSON string: whether it names a token of ours is the service's 401
    (`invalid_token`), so no length or encoding rule answers 400 before it."""

    default_error_messages = {"invalid": "Must be a string."}

    def __init__(self, **kwargs):
        super().__init__(allow_blank=True, trim_whitespace=False, **kwargs)
        self.validators = []  # CharField's NUL and surrogate rules: 400s too

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return data


class RefreshSerializer(serializers.Serializer):
    refresh = CredentialField(required=False)


class PasswordChangeSerializer(serializers.Serializer):
    old_password = StrictStringField(max_length=4096, trim_whitespace=False)
    new_password = StrictStringField(max_length=4096, trim_whitespace=False)


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class TokenPairSerializer(serializers.Serializer):
    """Answer of login and refresh; `refresh` is absent in cookie mode."""

    access = serializers.CharField()
    refresh = serializers.CharField(required=False)
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField()
    user = UserRefSerializer()


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    # Not EmailField: users without an address have "" (no `format: email`).
    email = serializers.CharField(allow_blank=True)
    is_staff = serializers.BooleanField()


class SessionSerializer(serializers.Serializer):
    id = serializers.CharField(source="sid")
    created_at = serializers.SerializerMethodField()
    last_used_at = serializers.SerializerMethodField()
    user_agent = serializers.CharField()
    current = serializers.SerializerMethodField()

    def get_created_at(self, session) -> int:
        return int(session.created_at.timestamp())

    def get_last_used_at(self, session) -> int:
        return int(session.last_used_at.timestamp())

    def get_current(self, session) -> bool:
        return session.sid == self.context["current_sid"]


class TicketSerializer(serializers.Serializer):
    ticket = serializers.CharField()
    expires_in = serializers.IntegerField()
