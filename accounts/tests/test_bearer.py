"""accounts.bearer: the one reader of `Authorization: Bearer <token>`."""

import subprocess
import sys
from pathlib import Path

import pytest

from accounts.bearer import MalformedBearer, bearer_token

# value → the token read (None: another scheme; MalformedBearer: refused).
SPELLINGS = {
    "Bearer abc": "abc",
    "bearer abc": "abc",
    "BEARER abc": "abc",
    "bEaReR abc": "abc",
    "Bearer\tabc": "abc",
    "Bearer   abc": "abc",
    "Bearer \t abc": "abc",
    "  Bearer abc  ": "abc",
    "\tBearer abc\t": "abc",
    "Bearer": MalformedBearer,
    "Bearer ": MalformedBearer,
    "Bearer \t ": MalformedBearer,
    "Bearer a b": MalformedBearer,
    "Bearer a\tb": MalformedBearer,
    "Basic YWxpY2U6cHc=": None,
    "Token abc": None,
    "Bearerabc": None,
    "Bearer\nabc": None,  # a line break is no separator
    "Bearer\u00a0abc": None,  # nor a no-break space
    "Bearer,abc": None,
    "": None,
    "   ": None,
}


@pytest.mark.parametrize("value, expected", SPELLINGS.items())
def test_bearer_spellings(value, expected):
    if expected is MalformedBearer:
        with pytest.raises(MalformedBearer):
            bearer_token(value)
    else:
        assert bearer_token(value) == expected


def test_a_long_run_of_blanks_is_read_in_linear_time():
    """The pattern it replaced backtracked over a run of blanks before the
    last character: 16,000 spaces took a second of the event loop, and the
    200,000 here minutes. Run apart, so the old code fails by its bound
    instead of holding the test run."""
    script = (
        "from accounts.bearer import MalformedBearer, bearer_token\n"
        "try:\n"
        "    bearer_token('Bearer x' + ' ' * 200_000 + 'y')\n"
        "except MalformedBearer:\n"
        "    print('refused')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert result.stdout.strip() == "refused", result.stderr
