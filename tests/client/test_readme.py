"""The README's Python example runs as written against a `make run`-like server."""

import re
import subprocess
import sys
import textwrap

import pytest

from tests.servers import PROJECT

pytestmark = [pytest.mark.e2e]


def readme_python_example() -> str:
    readme = (PROJECT / "README.md").read_text()
    match = re.search(
        r"\n    \.venv/bin/python - <<'PY'\n(.*?)\n    PY\n", readme, re.S
    )
    assert match, "the README's Python example (a <<'PY' heredoc) is gone"
    return textwrap.dedent(match.group(1))


def test_readme_python_example_runs(serve):
    server = serve(DJANGO_DEBUG="1")  # as `make run` serves it
    code = readme_python_example()
    assert "http://127.0.0.1:8000" in code
    done = subprocess.run(
        [sys.executable, "-"],
        input=code.replace("http://127.0.0.1:8000", server.http),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "'type': 'welcome'" in done.stdout
    assert "room:lobby" in done.stdout and "hi from Python" in done.stdout
