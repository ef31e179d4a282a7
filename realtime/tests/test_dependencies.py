"""The kinds are realtime's bottom layer (docs/architecture.md)."""

from pathlib import Path

from tests.imports import import_graph

REALTIME = Path(__file__).resolve().parents[1]


def test_the_kinds_and_their_registry_import_nothing_of_realtime():
    assert import_graph(REALTIME)["realtime.kind_registry"] == set()
