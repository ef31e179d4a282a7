"""accounts is the lower layer: it never imports realtime (signals point up)."""

from pathlib import Path

from tests.imports import imported_modules

ACCOUNTS = Path(__file__).resolve().parents[1]


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
