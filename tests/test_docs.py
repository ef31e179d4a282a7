"""The docs keep up with the code: every setting, frame and code is documented.

Environment variables are found by scanning the server's source for the calls
that read them, so a new variable cannot ship without docs/protocol.md and
.env.example describing it.
"""

import re
import subprocess
from pathlib import Path

import pytest

from realtime.protocol import ClientFrame, CloseCode, ErrorCode, ServerFrame

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL_DOC = ROOT / "docs" / "protocol.md"
ENV_EXAMPLE = ROOT / ".env.example"
SERVER_PACKAGES = ("authsocket", "accounts", "realtime")

# `env_int("X", …)`, `_env_float("X", …)`, `os.environ.get("X")`, `getenv("X")`.
ENV_READ = re.compile(
    r"""(?:\b_?env_\w+\(|environ\.get\(|getenv\(|environ\[)\s*["']([A-Z][A-Z0-9_]+)["']"""
)
# Assembled so that this file does not match itself.
OUTSIDE_REFERENCE = re.compile(
    "|".join(
        [re.escape("PROTOCOL" + ".md"), re.escape("../" + "shared"), "PROTOCOL" + " §"]
    )
)


def server_sources() -> list[Path]:
    return [
        path
        for package in SERVER_PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "tests" not in path.parts and "migrations" not in path.parts
    ]


def env_vars_read() -> set[str]:
    names = set()
    for path in server_sources():
        names |= set(ENV_READ.findall(path.read_text()))
    return names


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def test_the_scan_finds_the_variables_it_should():
    """Guards the scan itself: an empty result would pass everything below."""
    found = env_vars_read()
    assert {
        "DJANGO_DEBUG",
        "DATABASE_URL",
        "AUTHSOCKET_JWT_SECRET",
        "AUTHSOCKET_SHUTDOWN_GRACE",  # read by authsocket/serve.py
        "DEMO_PASSWORD",  # read by a management command
    } <= found


@pytest.mark.parametrize("name", sorted(env_vars_read()))
def test_env_var_is_in_protocol_doc(name):
    rows = table_rows(PROTOCOL_DOC.read_text())
    assert any(f"`{name}`" in row for row in rows), f"{name}: no row in §1"


@pytest.mark.parametrize("name", sorted(env_vars_read()))
def test_env_var_is_in_env_example(name):
    assert re.search(rf"^(?:# )?{name}=", ENV_EXAMPLE.read_text(), re.M), name


@pytest.mark.parametrize("frame", [*ClientFrame, *ServerFrame], ids=str)
def test_frame_type_has_a_row_in_protocol_doc(frame):
    rows = table_rows(PROTOCOL_DOC.read_text())
    assert any(row.startswith(f"| `{frame}` |") for row in rows), frame


@pytest.mark.parametrize("code", list(ErrorCode), ids=str)
def test_error_code_has_a_row_in_protocol_doc(code):
    rows = table_rows(PROTOCOL_DOC.read_text())
    assert any(row.startswith(f"| `{code}` |") for row in rows), code


@pytest.mark.parametrize("code", list(CloseCode), ids=lambda c: str(int(c)))
def test_close_code_has_a_row_in_protocol_doc(code):
    rows = table_rows(PROTOCOL_DOC.read_text())
    first_cells = [row.split("|")[1] for row in rows]
    assert any(re.search(rf"\b{int(code)}\b", cell) for cell in first_cells), code


def test_no_file_points_outside_the_repository():
    tracked = subprocess.run(
        ["git", "ls-files", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout.split(b"\0")
    offenders = []
    for name in filter(None, tracked):
        path = ROOT / name.decode()
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        if OUTSIDE_REFERENCE.search(text):
            offenders.append(name.decode())
    assert offenders == []


# `path.py::name` (a test, class or function) in docs/security.md; `::name`
# alone names another one in the file named last.
SECURITY_DOC = ROOT / "docs" / "security.md"
NAMED_CODE = re.compile(r"`((?:[\w./-]+\.py)?)::(\w+)(?:\[[^\]`]*\])?`")
NAMED_FILE = re.compile(r"`([\w./-]+\.py)`")


def security_doc_references() -> list[tuple[str, str]]:
    references, current = [], None
    for match in NAMED_CODE.finditer(SECURITY_DOC.read_text()):
        current = match.group(1) or current
        references.append((current, match.group(2)))
    return references


def test_the_security_doc_names_only_code_that_exists():
    """Each threat row's mechanism and tests are real: a renamed or deleted
    test cannot leave a row pointing at nothing."""
    references = security_doc_references()
    assert len(references) > 100  # the scan reads the doc
    missing = []
    for path, name in references:
        source = ROOT / path if path else None
        if source is None or not source.is_file():
            missing.append(f"{path}::{name} (no such file)")
            continue
        defined = re.compile(
            rf"^\s*(?:async\s+def|def|class)\s+{name}\b|^{name}\s*[:=]", re.MULTILINE
        )
        if not defined.search(source.read_text()):
            missing.append(f"{path}::{name}")
    files = NAMED_FILE.findall(SECURITY_DOC.read_text())
    missing += [f"{p} (no such file)" for p in files if not (ROOT / p).is_file()]
    assert missing == []
