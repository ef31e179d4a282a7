"""Access tokens forged by hand, for tests that must see them refused.

One place builds claim sets, JSON segments and HMAC signatures without
PyJWT's own checks: the token and key tests and the bad-token corpus
(tests/data/make_bad_tokens.py, which runs outside Django) all use it.
"""

import base64
import hashlib
import hmac
import json

# The secret pyproject.toml gives the tests (AUTHSOCKET_JWT_SECRET).
TEST_SECRET = "test-jwt-secret-not-for-production-0123456789"
# accounts.keys: the HS256 kid is a truncated HMAC of the secret.
TEST_KID = hmac.new(TEST_SECRET.encode(), b"kid", hashlib.sha256).hexdigest()[:16]
ISSUER, AUDIENCE = "authsocket", "authsocket-ws"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value) -> str:
    """One JWT segment: the JSON of `value`, base64url without padding."""
    return b64(json.dumps(value).encode())


def access_claims(*, sub, sid, iat, exp, jti, **overrides) -> dict:
    """A claim set valid in every respect but `overrides` (a value of `...` drops it)."""
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "sid": sid,
        "iat": iat,
        "exp": exp,
        "jti": jti,
        "typ": "access",
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not ...}


def hs256(
    header_segment: str, payload_segment: str, key: bytes, digest=hashlib.sha256
) -> str:
    """The token signed by HMAC over its first two segments, whatever they say."""
    signing_input = f"{header_segment}.{payload_segment}".encode()
    mac = hmac.new(key, signing_input, digest).digest()
    return f"{header_segment}.{payload_segment}.{b64(mac)}"
