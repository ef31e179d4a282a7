"""accounts.tokens: every malformed, forged or stale token is refused (RFC 8725)."""

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from accounts.keys import keyring
from accounts.tokens import (
    MAX_TOKEN_BYTES,
    InvalidToken,
    TokenExpired,
    decode_access,
    encode_access,
)
from tests.tokens import TEST_SECRET as SECRET
from tests.tokens import access_claims, b64, hs256, segment


def claims(**overrides):
    now = int(time.time())
    fields = {"sub": "7", "sid": "session-1", "iat": now, "exp": now + 300}
    return access_claims(**{**fields, "jti": "j1", **overrides})


def sign(payload, key=SECRET, alg="HS256", headers=None):
    return jwt.encode(
        payload,
        key,
        algorithm=alg,
        headers={"kid": keyring().signing_kid, **(headers or {})},
    )


def test_round_trip_gives_typed_claims():
    token, exp = encode_access(user_id=7, sid="session-1")
    result = decode_access(token)
    assert (result.user_id, result.sid, result.exp) == (7, "session-1", exp)


def test_header_carries_kid_and_pinned_algorithm():
    token, _ = encode_access(user_id=7, sid="s")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    assert header["kid"] == keyring().signing_kid


def test_valid_token_within_leeway_is_accepted():
    now = int(time.time())
    assert decode_access(sign(claims(exp=now - 5))).user_id == 7  # leeway 10 s
    assert decode_access(sign(claims(iat=now + 5))).user_id == 7
    assert decode_access(sign(claims(nbf=now + 5))).user_id == 7


def test_expired_token_raises_token_expired():
    with pytest.raises(TokenExpired) as info:
        decode_access(sign(claims(exp=int(time.time()) - 60)))
    assert info.value.code == "token_expired"


def _tampered_payload() -> str:
    head, _, sig = sign(claims()).split(".")
    return ".".join([head, segment(claims(sub="1")), sig])


def _tampered_header() -> str:
    _, body, sig = sign(claims()).split(".")
    return ".".join(
        [segment({"alg": "HS256", "kid": "other", "typ": "JWT"}), body, sig]
    )


def _alg_none() -> str:
    body = segment(claims())
    return f"{segment({'alg': 'none', 'kid': keyring().signing_kid})}.{body}."


def _rsa_public_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _hs256_with_public_key() -> str:
    """Algorithm confusion: HMAC keyed with a public key's PEM text."""
    header = {"alg": "HS256", "typ": "JWT", "kid": keyring().signing_kid}
    return hs256(segment(header), segment(claims()), _rsa_public_pem())


now = int(time.time())
BAD_TOKENS = {
    "nbf in the future": lambda: sign(claims(nbf=int(time.time()) + 120)),
    "iat in the future beyond leeway": lambda: sign(claims(iat=int(time.time()) + 120)),
    "wrong iss": lambda: sign(claims(iss="someone-else")),
    "wrong aud": lambda: sign(claims(aud="other-audience")),
    "aud list without ours": lambda: sign(claims(aud=["x", "y"])),
    **{
        f"missing {name}": (lambda name=name: sign(claims(**{name: ...})))
        for name in ["iss", "aud", "sub", "sid", "iat", "exp", "jti", "typ"]
    },
    "alg none": _alg_none,
    "signed with another secret": lambda: sign(
        claims(), key="another-secret-0123456789-0123456789"
    ),
    "HS256 signed with a public key": _hs256_with_public_key,
    "payload tampered": _tampered_payload,
    "header tampered": _tampered_header,
    "5 KiB token": lambda: sign(claims(pad="x" * 5 * 1024)),
    "not three segments": lambda: "abc.def",
    "four segments": lambda: sign(claims()) + ".extra",
    "bad base64": lambda: "!!!.@@@.###",
    "non-JSON segments": lambda: f"{b64(b'not json')}.{b64(b'nor this')}.{b64(b'sig')}",
    "typ not access": lambda: sign(claims(typ="refresh")),
    "sub not a string": lambda: sign(claims(sub=7)),
    "sub not a number": lambda: sign(claims(sub="alice")),
    "exp not a number": lambda: sign(claims(exp="tomorrow")),
    "unknown kid": lambda: sign(claims(), headers={"kid": "nope"}),
    "header not an object": lambda: f"{b64(b'[1]')}.{b64(b'{}')}.{b64(b'sig')}",
    "kid not hashable": lambda: ".".join(
        [b64(b'{"alg":"HS256","kid":["a"]}'), *sign(claims()).split(".")[1:]]
    ),
    "header deeply nested": lambda: f"{b64(b'[' * 1000 + b']' * 1000)}.e30.x",
    "empty string": lambda: "",
    "not a string": lambda: 12345,
    "lone surrogate": lambda: "\ud800.\ud800.\ud800",
}


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_bad_token_is_refused_with_invalid_token(case):
    with pytest.raises(InvalidToken) as info:
        decode_access(BAD_TOKENS[case]())
    assert type(info.value) is InvalidToken
    assert info.value.code == "invalid_token"


def test_oversized_token_is_refused_before_parsing(monkeypatch):
    def explode(*args, **kwargs):
        raise AssertionError("parsed an oversized token")

    monkeypatch.setattr(jwt, "decode", explode)
    monkeypatch.setattr(json, "loads", explode)
    with pytest.raises(InvalidToken, match="too large"):
        decode_access("a" * (MAX_TOKEN_BYTES + 1))


def _in(seconds: int) -> int:
    return int(time.time()) + seconds


NOT_INTEGER_TIMES = {
    "exp-numeric-string": {"exp": str(_in(300))},
    "exp-float": {"exp": float(_in(300))},
    "exp-fraction": {"exp": _in(300) + 0.5},
    "exp-true": {"exp": True},
    "iat-numeric-string": {"iat": str(_in(0))},
    "iat-float": {"iat": float(_in(0))},
    "iat-false": {"iat": False},
    "nbf-numeric-string": {"nbf": str(_in(0))},
    "nbf-fraction": {"nbf": _in(0) - 0.5},
    "nbf-true": {"nbf": True},
}


@pytest.mark.parametrize(
    "overrides", NOT_INTEGER_TIMES.values(), ids=NOT_INTEGER_TIMES.keys()
)
def test_times_that_are_not_integers_are_invalid_token(overrides):
    """The contract's times are integers; PyJWT alone takes "123", 1.5, true."""
    with pytest.raises(InvalidToken) as info:
        decode_access(sign(claims(**overrides)))
    assert info.value.code == "invalid_token"


def test_an_expired_time_of_the_wrong_type_is_invalid_not_expired():
    with pytest.raises(InvalidToken) as info:
        decode_access(sign(claims(exp="1000")))
    assert info.value.code == "invalid_token"
