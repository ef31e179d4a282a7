"""Property-based tests (hypothesis): no input makes the parsers misbehave.

- The frame dispatcher answers ANY text with exactly one well-formed frame
  (or a close), never raises, and never sends text that UTF-8 cannot carry.
- The token decoder returns a claim set only when every rule of PROTOCOL §3
  holds; for anything else it raises `InvalidToken` (never another error).

Example counts are bounded so the file runs in a few seconds.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import math
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from accounts.tokens import AccessClaims, InvalidToken, decode_access
from realtime.consumers import StreamConsumer
from realtime.protocol import ClientFrame, CloseCode, ErrorCode, ServerFrame
from realtime.ratelimit import FrameLimiter
from tests.data.make_bad_tokens import TEST_KID, TEST_SECRET

BOUNDED = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# --- the frame dispatcher -----------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
frame_types = st.sampled_from([*ClientFrame, "", "PING", "welcome", "error"]) | st.text(
    max_size=12
)
frames = st.fixed_dictionaries(
    {"type": frame_types},
    optional={
        "ref": json_values,
        "token": json_values | st.text(alphabet="abc.-_", max_size=40),
        "stream": json_values | st.sampled_from(["user", "room:lobby", "room:"]),
        "data": json_values,
        "since": json_values,
    },
)
frame_texts = (
    st.text()
    | json_values.map(json.dumps)
    | frames.map(json.dumps)
    | frames.map(lambda f: json.dumps(f, ensure_ascii=False))
)


class Stub:
    def schedule(self, expires_at):
        pass

    def cancel(self):
        pass


def make_consumer(sent: list) -> StreamConsumer:
    """A consumer past its handshake, whose outgoing messages land in `sent`."""
    consumer = StreamConsumer()
    consumer.scope = {"type": "websocket", "path": "/ws/"}
    consumer.user_id, consumer.sid, consumer.registered = 1, "prop-session", False
    consumer.groups_joined = []
    consumer.limiter = FrameLimiter("1000000/s")
    consumer.expiry = Stub()

    async def base_send(message):
        sent.append(message)

    consumer.base_send = base_send
    return consumer


def utf8_safe(value) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_answer(text: str, sent: list) -> None:
    assert len(sent) == 1, sent
    message = sent[0]
    if message["type"] == "websocket.close":
        assert message.get("code") in set(CloseCode)
        return
    assert message["type"] == "websocket.send"
    out = message["text"]
    out.encode("utf-8")  # daphne encodes every text frame: it must not fail
    frame = json.loads(out)
    assert frame["type"] in set(ServerFrame)
    if frame["type"] == ServerFrame.ERROR:
        assert frame["code"] in set(ErrorCode)
    try:
        request = json.loads(text)
    except (ValueError, RecursionError):
        assert frame["code"] == ErrorCode.BAD_REQUEST
        return
    if not isinstance(request, dict) or not isinstance(request.get("type"), str):
        assert frame["code"] == ErrorCode.BAD_REQUEST
    elif not utf8_safe(request):
        assert frame["code"] == ErrorCode.BAD_REQUEST and "ref" not in frame
    elif "ref" in request:
        assert frame["ref"] == request["ref"] or (
            isinstance(request["ref"], float) and math.isnan(request["ref"])
        )


@BOUNDED
@given(text=frame_texts)
@example(text='{"type":"ping","ref":"\\ud800"}')
@example(text='{"type":"nope\\udfff"}')
@example(text="[" * 10_000)
@example(text='{"type":"auth","token":"' + "a" * 5000 + '"}')
def test_dispatcher_answers_any_text_with_one_valid_frame(text):
    sent = []
    consumer = make_consumer(sent)
    asyncio.run(consumer.receive(text_data=text))
    check_answer(text, sent)


# --- the token decoder --------------------------------------------------------

LEEWAY = 10


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(header: dict, payload, key: bytes) -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(payload).encode())
    mac = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


def now() -> int:
    return int(time.time())


def times():
    """Seconds around now, far past/future, and non-numbers."""
    return (
        st.integers(-1000, 1000).map(lambda d: now() + d)
        | st.sampled_from([0, -1, 10**12, 10**30])
        | json_values
    )


claim_values = {
    "iss": st.sampled_from(["authsocket", "evil", ""]) | json_values,
    "aud": st.sampled_from(["authsocket-ws", ["authsocket-ws"], "x"]) | json_values,
    "sub": st.sampled_from(["1", "42", "-1", "1.0", "", "a", "١"]) | json_values,
    "sid": st.text(max_size=70) | json_values,
    "iat": times(),
    "exp": times(),
    "nbf": times(),
    "jti": st.text(max_size=8) | json_values,
    "typ": st.sampled_from(["access", "refresh", "ACCESS"]) | json_values,
}


@st.composite
def token_parts(draw):
    base = {
        "iss": "authsocket",
        "aud": "authsocket-ws",
        "sub": "1",
        "sid": "prop-session",
        "iat": now(),
        "exp": now() + 300,
        "jti": "j",
        "typ": "access",
    }
    payload = {}
    for name, values in claim_values.items():
        choice = draw(st.sampled_from(["keep", "keep", "drop", "replace"]))
        if choice == "keep" and name in base:
            payload[name] = base[name]
        elif choice == "replace":
            payload[name] = draw(values)
    header = {
        "alg": draw(st.sampled_from(["HS256", "HS256", "HS512", "none", "RS256"])),
        "kid": draw(st.sampled_from([TEST_KID, TEST_KID, "other", None, 7])),
    }
    ours = draw(st.booleans()) or draw(st.booleans())
    return header, payload, ours


def number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def acceptable(header: dict, payload: dict, ours: bool) -> list[str]:
    """What is wrong with a token that was accepted (empty: nothing)."""
    t = time.time()
    problems = []
    if header["alg"] != "HS256" or header["kid"] != TEST_KID or not ours:
        problems.append("signature/alg/kid")
    if payload.get("iss") != "authsocket" or payload.get("aud") != "authsocket-ws":
        problems.append("iss/aud")
    if payload.get("typ") != "access":
        problems.append("typ")
    sub, sid, jti = payload.get("sub"), payload.get("sid"), payload.get("jti")
    if not (isinstance(sub, str) and sub.isascii() and sub.isdigit()):
        problems.append("sub")
    if not (isinstance(sid, str) and 0 < len(sid) <= 64) or not isinstance(jti, str):
        problems.append("sid/jti")
    exp, iat = payload.get("exp"), payload.get("iat")
    if not (number(exp) and exp + LEEWAY > t - 1):
        problems.append("exp")
    if not (number(iat) and iat - LEEWAY <= t + 1):
        problems.append("iat")
    if "nbf" in payload and not (
        number(payload["nbf"]) and payload["nbf"] - LEEWAY <= t + 1
    ):
        problems.append("nbf")
    return problems


@BOUNDED
@given(parts=token_parts())
def test_decoder_returns_only_fully_valid_claims_or_raises_invalid_token(parts):
    header, payload, ours = parts
    key = TEST_SECRET.encode() if ours else b"not-our-secret-0123456789-0123456789"
    token = sign(header, payload, key)
    try:
        claims = decode_access(token)
    except InvalidToken:
        return
    assert acceptable(header, payload, ours) == []
    assert isinstance(claims, AccessClaims)
    assert claims.user_id == int(payload["sub"]) and claims.sid == payload["sid"]
    assert isinstance(claims.exp, int) and isinstance(claims.iat, int)


@BOUNDED
@given(token=st.text() | st.binary().map(lambda b: b.decode("latin-1")) | json_values)
def test_decoder_raises_only_invalid_token_on_junk(token):
    with pytest.raises(InvalidToken):
        decode_access(token)


@settings(BOUNDED, max_examples=100)
@given(extra=st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_a_valid_token_with_extra_claims_is_accepted(extra):
    """Non-vacuity: the oracle above is exercised by tokens that do pass."""
    payload = {
        **extra,
        "iss": "authsocket",
        "aud": "authsocket-ws",
        "sub": "5",
        "sid": "prop-session",
        "iat": now(),
        "exp": now() + 300,
        "jti": "j",
        "typ": "access",
    }
    payload.pop("nbf", None)
    claims = decode_access(
        sign({"alg": "HS256", "kid": TEST_KID}, payload, TEST_SECRET.encode())
    )
    assert claims.user_id == 5
