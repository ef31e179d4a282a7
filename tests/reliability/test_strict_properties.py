"""Generated, not listed: depth, numbers, field types and header spellings.

- Depth: JSON of a random shape nested to a random depth around 64 is
  accepted exactly up to 64, by the parser, by the socket and by the API.
- Numbers: random literals, NaN/Infinity and overflowing ones included, are
  accepted exactly when they are finite doubles, everywhere.
- Field types: any wrong-typed (or missing) field of any client frame is
  `bad_request`, with the `ref` echoed and the socket open.
- `Authorization`: random spellings get the same verdict from the API and
  the WebSocket handshake, and it is the one the contract states.

Oracles: tests/reliability/strict_oracle.py (independent of the code).
"""

import asyncio
import json

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import session_open
from accounts.tokens import InvalidToken, decode_access
from core import strict_json
from realtime.credentials import BadCredential, credential_of
from tests.reliability.strict_oracle import (
    FIELD_RULES,
    MAX_DEPTH,
    NOT_STRICT,
    bearer_accepted,
    finite_number_literal,
    json_depth,
    strict_parse,
)
from tests.reliability.test_properties import make_consumer

BOUNDED = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Strings full of what a naive bracket counter would miscount.
tricky_strings = st.text(alphabet='[]{}"\\:,ab', max_size=6).map(json.dumps)
scalars = st.sampled_from(["0", "-1.5e3", "true", "null", '""']) | tricky_strings


@st.composite
def nested_json(draw, depth: int, leaf=scalars) -> str:
    """JSON text exactly `depth` deep: arrays and objects at random, siblings
    that are scalars (so they never add depth), brackets inside strings."""
    text = draw(leaf)
    for _ in range(depth):
        siblings = draw(st.lists(scalars, max_size=2))
        position = draw(st.integers(0, len(siblings)))
        members = [*siblings[:position], text, *siblings[position:]]
        if draw(st.booleans()):
            text = "[" + ",".join(members) + "]"
        else:
            tails = draw(
                st.lists(
                    st.text(alphabet='[]{}"\\', max_size=3),
                    min_size=len(members),
                    max_size=len(members),
                )
            )
            keys = [json.dumps(f"{i}{tail}") for i, tail in enumerate(tails)]
            pairs = zip(keys, members, strict=True)
            text = "{" + ",".join(f"{k}:{m}" for k, m in pairs) + "}"
    return text


depths = st.integers(MAX_DEPTH - 2, MAX_DEPTH + 2) | st.integers(0, 2 * MAX_DEPTH)


def answers(text: str) -> list[dict]:
    """What a socket past its handshake sends back for one text frame."""
    sent = []
    user = User(pk=1, username="prop")  # bad_request paths never query
    asyncio.run(make_consumer(sent, user).receive(text_data=text))
    assert all(m["type"] == "websocket.send" for m in sent), sent
    return [json.loads(m["text"]) for m in sent]


def api_code(body: str) -> tuple[int, str | None]:
    """POST to the (unthrottled, unauthenticated) refresh endpoint."""
    client = APIClient(raise_request_exception=False)
    response = client.post("/api/auth/refresh", body, content_type="application/json")
    return response.status_code, response.json().get("code")


# --- depth ------------------------------------------------------------------------


@BOUNDED
@given(data=st.data(), depth=depths)
def test_the_parser_accepts_exactly_up_to_64_deep(data, depth):
    text = data.draw(nested_json(depth))
    assert json_depth(json.loads(text)) == depth  # the generator is exact
    if depth <= MAX_DEPTH:
        assert strict_json.loads(text) == json.loads(text)
    else:
        with pytest.raises(strict_json.StrictJSONError):
            strict_json.loads(text)


@BOUNDED
@given(data=st.data(), depth=depths)
def test_a_frame_is_answered_exactly_up_to_64_deep(data, depth):
    ref = data.draw(nested_json(depth))
    frame_depth = depth + 1
    [answer] = answers('{"type":"ping","ref":' + ref + "}")
    if frame_depth <= MAX_DEPTH:
        assert answer == {"type": "pong", "ref": json.loads(ref)}
    else:
        assert (answer["type"], answer["code"]) == ("error", "bad_request")


@pytest.mark.django_db
@BOUNDED
@given(data=st.data(), depth=depths)
def test_an_api_body_is_parse_error_exactly_beyond_64_deep(data, depth):
    status, code = api_code(data.draw(nested_json(depth)))
    assert status == 400
    assert (code == "parse_error") == (depth > MAX_DEPTH), (depth, code)


# --- numbers ----------------------------------------------------------------------

number_literals = st.one_of(
    st.floats().map(json.dumps),  # NaN, Infinity, -Infinity among them
    st.builds("{}e{}".format, st.integers(-9, 9), st.integers(280, 330)),
    st.builds(
        "{}.{}E+{}".format, st.integers(1, 9), st.integers(0, 99), st.integers(300, 320)
    ),
    st.integers(295, 320).map(lambda n: "1" + "0" * n),
    st.integers(295, 320).map(lambda n: "-" + "9" * n),
    st.integers().map(str),
    st.sampled_from(["1e-400", "-0.0", "1.7976931348623157e308", "1.8e308"]),
)


def literal_is_finite(literal: str) -> bool:
    return literal not in ("NaN", "Infinity", "-Infinity") and finite_number_literal(
        literal
    )


@BOUNDED
@given(data=st.data(), literal=number_literals, depth=st.integers(0, 10))
def test_numbers_are_accepted_exactly_when_finite_doubles(data, literal, depth):
    text = data.draw(nested_json(depth, leaf=st.just(literal)))
    finite = literal_is_finite(literal)
    assert (strict_parse(text) is not NOT_STRICT) == finite  # the oracle agrees
    if finite:
        strict_json.loads(text)
    else:
        with pytest.raises(strict_json.StrictJSONError):
            strict_json.loads(text)
    [answer] = answers('{"type":"ping","ref":' + text + "}")
    assert (answer["type"] == "pong") == finite, answer


@pytest.mark.django_db
@settings(BOUNDED, max_examples=60)
@given(literal=number_literals)
def test_an_api_body_with_a_number_that_is_not_a_finite_double_is_parse_error(
    literal,
):
    status, code = api_code('{"refresh": ' + literal + "}")
    expected = (400, "invalid") if literal_is_finite(literal) else (400, "parse_error")
    assert (status, code) == expected


# --- field types ------------------------------------------------------------------

strict_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)
MISSING = object()
VALID = {
    "subscribe": {"stream": "room:lobby"},
    "unsubscribe": {"stream": "room:lobby"},
    "publish": {"stream": "room:lobby", "data": 1},
    "auth": {"token": "a.b.c"},
    "presence": {"stream": "room:lobby"},
}


@settings(BOUNDED, max_examples=300)
@given(data=st.data(), frame_type=st.sampled_from(sorted(VALID)), ref=strict_values)
def test_a_wrong_field_type_is_bad_request_with_the_ref(data, frame_type, ref):
    name = data.draw(st.sampled_from(sorted(FIELD_RULES[frame_type])))
    accepts, required = FIELD_RULES[frame_type][name]
    wrong = data.draw(
        strict_values.filter(lambda v: not accepts(v))
        | (st.just(MISSING) if required else st.nothing())
    )
    frame = {"type": frame_type, **VALID[frame_type], "ref": ref}
    if wrong is MISSING:
        del frame[name]
    else:
        frame[name] = wrong
    [answer] = answers(json.dumps(frame, allow_nan=False))
    assert answer == {
        "type": "error",
        "code": "bad_request",
        "detail": answer["detail"],
        "ref": ref,
    }


# --- Authorization: Bearer ------------------------------------------------------

BLANKS = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\xa0", "\u3000", ","]


@st.composite
def authorization_headers(draw, token: str) -> str:
    def blanks(min_size=0):
        return "".join(
            draw(st.lists(st.sampled_from(BLANKS), min_size=min_size, max_size=3))
        )

    scheme = draw(
        st.sampled_from(["bearer", "Bearer", "BEARER", "bEaReR", "Bearer:", "Token"])
        | st.text(alphabet="beaRrBEAR", min_size=5, max_size=7)
    )
    body = draw(
        st.sampled_from([token, token, token + "x", token[:-1], "", f"{token} {token}"])
    )
    spaced = (
        draw(st.sampled_from([" ", "\t", " \t "])) if draw(st.booleans()) else blanks()
    )
    return blanks() + scheme + spaced + body + blanks()


@pytest.fixture
def header_token(make_user):
    user = make_user("header", "pw-header-123")
    return session_open(user=user, user_agent="pytest").access


def websocket_accepts(header: str) -> bool:
    """The handshake's reading of the header, then the token check it does.

    A header of another scheme is no credential: with nothing else offered,
    the handshake is refused all the same."""
    scope = {"headers": [(b"authorization", header.encode("latin-1", "replace"))]}
    try:
        credential = credential_of(scope)
        if credential is None:
            return False
        decode_access(credential.value)
    except (BadCredential, InvalidToken):
        return False
    return True


@pytest.mark.django_db
@settings(BOUNDED, max_examples=200)
@given(data=st.data())
def test_api_and_websocket_give_every_spelling_the_same_verdict(data, header_token):
    header = data.draw(authorization_headers(header_token))
    assume(header.isascii() or "\xa0" in header)  # headers travel as latin-1
    response = APIClient().get("/api/me", HTTP_AUTHORIZATION=header)
    assert response.status_code in (200, 401)
    api = response.status_code == 200
    expected = bearer_accepted(header, header_token)
    assert (api, websocket_accepts(header)) == (expected, expected), repr(header)
