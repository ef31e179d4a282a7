"""accounts is the lower layer: it never imports realtime (signals point up)."""

import ast
from pathlib import Path

ACCOUNTS = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_accounts_module_imports_realtime():
    offenders = {
        str(path.relative_to(ACCOUNTS)): sorted(
            name for name in imported_modules(path) if name.split(".")[0] == "realtime"
        )
        for path in ACCOUNTS.rglob("*.py")
        if "tests" not in path.relative_to(ACCOUNTS).parts
    }
    offenders = {path: names for path, names in offenders.items() if names}
    assert offenders == {}
