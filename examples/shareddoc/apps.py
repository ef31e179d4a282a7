from django.apps import AppConfig


class SharedDocConfig(AppConfig):
    name = "examples.shareddoc"
    label = "shareddoc"

    def ready(self) -> None:
        from examples.shareddoc import signals  # noqa: F401  (connects receivers)
