"""This process's Prometheus figures, read in the tests of every app."""

from prometheus_client import REGISTRY


def value(name: str, **labels) -> float:
    """A sample's current value; 0 when it was never set."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Delta:
    """`with Delta(name, **labels) as d: ...; d.value` → how much it moved."""

    def __init__(self, name: str, **labels):
        self.name, self.labels = name, labels

    def __enter__(self):
        self.before = value(self.name, **self.labels)
        return self

    def __exit__(self, *exc):
        return False

    @property
    def value(self) -> float:
        return value(self.name, **self.labels) - self.before
