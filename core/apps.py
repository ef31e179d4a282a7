from django.apps import AppConfig


class CoreConfig(AppConfig):
    """An app only so that Django loads the project's system checks
    (core/checks.py) with every command, `check --deploy` included."""

    name = "core"

    def ready(self) -> None:
        from core import checks  # noqa: F401  (registers the project's checks)
