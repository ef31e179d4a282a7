"""System checks of the project's own settings, run by `manage.py check`.

Only what a deployment may get wrong without the process refusing to start:
settings that are unusable stop it in settings.py instead.
"""

from django.conf import settings
from django.core.checks import Tags, register
from django.core.checks import Warning as CheckWarning

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
