"""The docs keep up with the code: every setting, frame and code is documented.

Environment variables are found by parsing the server's source for the calls
that read them (and a read whose name is not written out fails), so a new
variable cannot ship without docs/protocol.md and .env.example describing it.
Client frames are the ones the WebSocket consumer's frame table dispatches;
server frames are the ones its `send_frame` calls name.
"""

import ast
import re
import subprocess
from pathlib import Path

import pytest

from realtime.protocol import ClientFrame, CloseCode, ErrorCode, ServerFrame

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL_DOC = ROOT / "docs" / "protocol.md"
ENV_EXAMPLE = ROOT / ".env.example"
SERVER_PACKAGES = ("core", "authsocket", "accounts", "realtime")

# `env_int("X", …)`, `_env_float("X", …)`: core/env.py's typed readers
# and the like; `os.environ.get("X")`, `os.environ["X"]`, `os.getenv("X")`.
ENV_READER = re.compile(r"^_?env_\w+$")
# Assembled so that this file does not match itself.
OUTSIDE_REFERENCE = re.compile(
    "|".join(
        [
            re.escape("PROTOCOL" + ".md"),
            re.escape("../" + "shared"),
            "PROTOCOL" + " §",
            re.escape("/" + "work/"),
        ]
    )
)


def server_sources() -> list[Path]:
    return [
        path
        for package in SERVER_PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "tests" not in path.parts and "migrations" not in path.parts
    ]


def _is_environ(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def _callee(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def env_reads(tree: ast.AST) -> list[ast.expr]:
    """The name argument of every environment read in a module.

    Inside the readers themselves only names written out count: a reader
    reads the `name` it was given, and its callers are what is scanned.
    """
    inside_readers = {
        id(node)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef) and ENV_READER.match(function.name)
        for node in ast.walk(function)
    }
    reads = []
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Subscript) and _is_environ(node.value):
            name = node.slice
        elif isinstance(node, ast.Call) and node.args:
            callee = _callee(node)
            if (
                ENV_READER.match(callee)
                or callee == "getenv"
                or (callee == "get" and _is_environ(node.func.value))
            ):
                name = node.args[0]
        if name is None:
            continue
        if id(node) in inside_readers and not isinstance(name, ast.Constant):
            continue
        reads.append(name)
    return reads


def _env_scan() -> tuple[set[str], list[str]]:
    names, unnamed = set(), []
    for path in server_sources():
        for arg in env_reads(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.add(arg.value)
            else:
                unnamed.append(f"{path.relative_to(ROOT)}:{arg.lineno}")
    return names, unnamed


def env_vars_read() -> set[str]:
    return _env_scan()[0]


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def configuration_section(text: str) -> str:
    """§1 of docs/protocol.md: from its heading to the next `## ` heading."""
    match = re.search(r"^## 1\. Configuration\n(.*?)^## ", text, re.M | re.S)
    assert match, "docs/protocol.md has no '## 1. Configuration' section"
    return match.group(1)


def test_the_scan_finds_the_variables_it_should():
    """Guards the scan itself: an empty result would pass everything below.

    One variable of each way of reading, and of each area added over time."""
    found = env_vars_read()
    assert {
        "DJANGO_DEBUG",  # env_bool
        "DATABASE_URL",  # env_str
        "DJANGO_ALLOWED_HOSTS",  # env_list
        "AUTHSOCKET_LOGIN_ADDRESS_THROTTLE",  # env_rate, name on its own line
        "AUTHSOCKET_MAX_MESSAGE_BYTES",  # read inside a helper of core/env.py
        "AUTHSOCKET_SHUTDOWN_GRACE",  # authsocket/serve.py's own float reader
        "AUTHSOCKET_LOG_FORMAT",  # os.environ.get in authsocket/serve.py
        "DEMO_PASSWORD",  # read by a management command
        "AUTHSOCKET_PRESENCE_TTL",
        "AUTHSOCKET_PRESENCE_WINDOW_MS",
        "AUTHSOCKET_SERVICE_KEY_THROTTLE",
        "AUTHSOCKET_HISTORY_MAX_AGE",
        "AUTHSOCKET_METRICS_TOKEN",
        "AUTHSOCKET_METRICS",
        "AUTHSOCKET_GC_THRESHOLD",
        "AUTHSOCKET_EXPECTED_SOCKETS",
        "AUTHSOCKET_RECLAIM_AFTER_DROP",
    } <= found


def test_the_scan_sees_every_way_of_reading_the_environment():
    source = """
import os
from os import environ
a = env_int("A_INT", 1)
b = _env_float("B_FLOAT", 1.0)
c = os.environ.get("C_GET")
d = os.environ["D_ITEM"]
e = os.getenv("E_GETENV")
f = environ.get("F_BARE")
g = env_str(
    "G_NEXT_LINE"
)
os.environ.setdefault("NOT_A_READ", "x")
def env_helper(name):
    return os.environ.get(name)
def env_fixed():
    return env_int("H_IN_A_HELPER", 1)
i = env_bool(NAME_IN_A_VARIABLE)
"""
    reads = env_reads(ast.parse(source))
    assert sorted(ast.unparse(arg) for arg in reads) == [
        "'A_INT'",
        "'B_FLOAT'",
        "'C_GET'",
        "'D_ITEM'",
        "'E_GETENV'",
        "'F_BARE'",
        "'G_NEXT_LINE'",
        "'H_IN_A_HELPER'",
        "NAME_IN_A_VARIABLE",
    ]


def test_every_environment_read_names_its_variable():
    """A name built at run time would escape every check below."""
    assert _env_scan()[1] == []


@pytest.mark.parametrize("name", sorted(env_vars_read()))
def test_env_var_is_in_protocol_doc(name):
    rows = table_rows(configuration_section(PROTOCOL_DOC.read_text()))
    assert any(row.startswith(f"| `{name}` |") for row in rows), f"{name}: no row in §1"


@pytest.mark.parametrize("name", sorted(env_vars_read()))
def test_env_var_is_in_env_example(name):
    assert re.search(rf"^(?:# )?{name}=", ENV_EXAMPLE.read_text(), re.M), name


def consumer_frame_types() -> set[str]:
    """The frame types the /ws/ consumer dispatches (its own and inherited)."""
    from realtime.consumers import StreamConsumer

    return {str(frame) for frame in StreamConsumer.frame_table}


def sent_frame_types() -> list[str]:
    """The first argument of every `send_frame(...)` call of the server."""
    sent = []
    for path in server_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and _callee(node) == "send_frame":
                sent.append(ast.unparse(node.args[0]))
    return sent


def test_the_consumer_handles_exactly_the_client_frames():
    assert consumer_frame_types() == {str(frame) for frame in ClientFrame}


def test_every_frame_sent_is_a_server_frame():
    sent = sent_frame_types()
    assert len(sent) >= 10  # the scan sees the calls at all
    assert set(sent) <= {f"ServerFrame.{frame.name}" for frame in ServerFrame}


def _frame_row(frame: str) -> None:
    rows = table_rows(PROTOCOL_DOC.read_text())
    assert any(row.startswith(f"| `{frame}` |") for row in rows), frame


@pytest.mark.django_db
@pytest.mark.parametrize("frame", sorted(str(frame) for frame in ClientFrame))
def test_client_frame_has_a_row_in_protocol_doc(frame):
    assert frame in consumer_frame_types()
    _frame_row(frame)


@pytest.mark.parametrize("frame", list(ServerFrame), ids=str)
def test_server_frame_has_a_row_in_protocol_doc(frame):
    _frame_row(frame)


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


# `docs_screenshot(page, "name")` in a browser test writes docs/screenshots/name.png.
DOCS_SCREENSHOT = re.compile(r"""docs_screenshot\(\s*\w+,\s*["']([\w-]+)["']""")


def test_readme_shows_every_screenshot_the_browser_tests_take():
    names = sorted(
        {
            name
            for path in (ROOT / "tests" / "browser").glob("test_*.py")
            for name in DOCS_SCREENSHOT.findall(path.read_text())
        }
    )
    assert {"signed-in", "renewal", "revoked", "carol", "narrow"} <= set(names), names
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"!\[[^]]+\]\(docs/screenshots/renewal\.png\)", readme)
    for name in names:
        assert f"](docs/screenshots/{name}.png)" in readme, name
        assert (ROOT / "docs" / "screenshots" / f"{name}.png").is_file(), name


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
