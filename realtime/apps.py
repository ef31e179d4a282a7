from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class RealtimeConfig(AppConfig):
    name = "realtime"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.signals import sessions_revoked
        from realtime import signals  # noqa: F401  (registers receivers)
        from realtime.kind_registry import STREAM_KINDS_MODULE
        from realtime.revocation import sessions_revoked_notify, sockets_close
        from realtime.session_guard import guard

        # Every app's stream kinds, realtime's own included; two kinds of
        # one name stop the start with ImproperlyConfigured.
        autodiscover_modules(STREAM_KINDS_MODULE)
        # accounts announces revocations; realtime closes the sockets.
        sessions_revoked.connect(sessions_revoked_notify, dispatch_uid=__name__)
        guard.subscribe(sockets_close)
