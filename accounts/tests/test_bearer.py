"""accounts.bearer: the one reader of `Authorization: Bearer <token>`."""

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
