"""Inside every package, imports point one way (docs/architecture.md).

No module imports one that imports it back, however indirectly. An import
made inside a function counts: deferring an import hides a cycle from
Python's start-up, it does not remove it. (Between the apps, accounts never
imports realtime: accounts/tests/test_dependencies.py.)
"""

from pathlib import Path

import pytest

from tests.imports import cycle_in, import_graph

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["authsocket", "accounts", "realtime", "clients/python/authsocket_client"]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_imports_one_that_imports_it_back(package):
    assert cycle_in(import_graph(REPO / package)) is None


def test_a_cycle_is_found_where_there_is_one():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycle_in(graph) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set()}) is None
