"""System checks of the project's own settings, run by `manage.py check`.

Only what a deployment may get wrong without the process refusing to start:
settings that are unusable stop it in settings.py instead.
"""

from django.conf import settings
from django.core.checks import Tags, register
from django.core.checks import Warning as CheckWarning

from core.env import full_replay_bytes

METRICS_TOKEN_MIN_LENGTH = 16


@register(Tags.security, deploy=True)
def metrics_token_length(app_configs, **kwargs) -> list[CheckWarning]:
    """A short /metrics token can be guessed; say so before production does."""
    token = settings.AUTHSOCKET_METRICS_TOKEN
    if not token or len(token) >= METRICS_TOKEN_MIN_LENGTH:
        return []
    return [
        CheckWarning(
            f"AUTHSOCKET_METRICS_TOKEN is shorter than {METRICS_TOKEN_MIN_LENGTH} characters.",
            hint="e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            id="authsocket.W001",
        )
    ]


@register()
def send_buffer_holds_a_replay(app_configs, **kwargs) -> list[CheckWarning]:
    """Below one whole replay, a client that reads can be dropped by a replay
    the server sends in one burst, then again when it resubscribes."""
    replay = full_replay_bytes(
        settings.AUTHSOCKET_REPLAY_LIMIT, settings.AUTHSOCKET_MAX_MESSAGE_BYTES
    )
    limit = settings.AUTHSOCKET_MAX_SEND_BUFFER_BYTES
    if limit >= replay:
        return []
    return [
        CheckWarning(
            f"AUTHSOCKET_MAX_SEND_BUFFER_BYTES is below one full replay ({replay} bytes).",
            hint=(
                "A client replaying AUTHSOCKET_REPLAY_LIMIT messages of "
                "AUTHSOCKET_MAX_MESSAGE_BYTES may be dropped before it can read "
                "them. Raise it, or lower either of those two if your messages "
                "are small."
            ),
            id="authsocket.W002",
        )
    ]


@register(Tags.security, deploy=True)
def allowed_origins_not_wildcard(app_configs, **kwargs) -> list[CheckWarning]:
    """`*` is a valid Channels pattern, so it is accepted; but it lets any
    site's pages open sockets here, which the Origin check exists to stop."""
    if "*" not in settings.AUTHSOCKET_ALLOWED_ORIGINS:
        return []
    return [
        CheckWarning(
            "AUTHSOCKET_ALLOWED_ORIGINS holds '*': pages of every site may open WebSockets.",
            hint="List the origins of your own pages, e.g. https://chat.example.org",
            id="authsocket.W003",
        )
    ]
