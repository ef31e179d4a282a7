"""authsocket is two layers: the wiring above both apps, and the modules below them.

The wiring (settings, the ASGI and URL entry points, the WebSocket routes,
the server process) puts accounts and realtime together. Everything else in
authsocket (metrics, env, api_errors, logging, …) is used by the apps and
must import neither, or a metric call would close an import cycle.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
WIRING = {"asgi.py", "routing.py", "serve.py", "settings.py", "urls.py"}
APPS = {"accounts", "realtime"}


def apps_imported(path: Path) -> set[str]:
    """Top-level app names `path` imports, at module level or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names & APPS


def modules() -> list[Path]:
    return [path for path in PACKAGE.glob("*.py") if path.name != "__init__.py"]


def test_only_the_wiring_imports_the_apps():
    offenders = {
        path.name: sorted(apps_imported(path))
        for path in modules()
        if path.name not in WIRING and apps_imported(path)
    }
    assert offenders == {}


def test_the_scan_sees_the_wiring_import_both_apps():
    """Guards the scan itself: finding nothing anywhere would pass the test above."""
    assert apps_imported(PACKAGE / "urls.py") == APPS
    assert apps_imported(PACKAGE / "asgi.py") == {"realtime"}
