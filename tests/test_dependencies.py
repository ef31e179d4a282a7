"""Imports point one way (docs/architecture.md, "Which app knows which").

Between the packages: core (what every app uses) knows no app, accounts
knows only core, realtime knows accounts and core, and the project package
authsocket, the wiring, sits on top of all three. Inside every package, no
module imports one that imports it back, however indirectly. An import made
inside a function counts: deferring an import hides a cycle from Python's
start-up, it does not remove it.
"""

from pathlib import Path

import pytest

from tests.imports import cycle_in, import_graph, imported_modules, package_modules

REPO = Path(__file__).resolve().parents[1]
# Lowest first: each package may import those before it, never those after.
LAYERS = ["core", "accounts", "realtime", "authsocket"]
PACKAGES = [*LAYERS, "clients/python/authsocket_client"]


def packages_imported(package: str) -> dict[str, set[str]]:
    """Each module of `package` → the layers (other than its own) it imports."""
    return {
        name: {imported.split(".")[0] for imported in imported_modules(path)}
        & set(LAYERS) - {package}
        for name, path in package_modules(REPO / package).items()
    }


@pytest.mark.parametrize("package", LAYERS)
def test_a_package_imports_only_the_layers_below_it(package):
    above = set(LAYERS[LAYERS.index(package) + 1 :])
    offenders = {
        module: sorted(imported & above)
        for module, imported in packages_imported(package).items()
        if imported & above
    }
    assert offenders == {}


def test_the_layer_scan_sees_real_imports():
    """Guards the scan itself: finding nothing anywhere would pass the test above."""
    assert packages_imported("authsocket")["authsocket.urls"] >= {
        "accounts",
        "realtime",
    }
    assert packages_imported("realtime")["realtime.views"] >= {"core"}
    assert packages_imported("accounts")["accounts.views"] == {"core"}
    assert not any(packages_imported("core").values())


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_imports_one_that_imports_it_back(package):
    assert cycle_in(import_graph(REPO / package)) is None


def test_a_cycle_is_found_where_there_is_one():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycle_in(graph) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set()}) is None
