from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.signals import sessions_revoked
        from realtime import signals  # noqa: F401  (registers receivers)
        from realtime.revocation import sessions_revoked_notify, sockets_close
        from realtime.session_guard import guard

        # accounts announces revocations; realtime closes the sockets.
        sessions_revoked.connect(sessions_revoked_notify, dispatch_uid=__name__)
        guard.subscribe(sockets_close)
