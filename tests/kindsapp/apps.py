from django.apps import AppConfig


class KindsAppConfig(AppConfig):
    name = "tests.kindsapp"
    label = "kindsapp"

    def ready(self) -> None:
        from tests.kindsapp import signals  # noqa: F401  (registers receivers)
