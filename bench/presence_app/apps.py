from django.apps import AppConfig


class PresenceBenchConfig(AppConfig):
    name = "bench.presence_app"
    label = "presence_bench"
