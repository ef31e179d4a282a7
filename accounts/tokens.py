"""Access tokens: the only module that imports PyJWT.

Verification follows RFC 8725 (JWT best current practices): the algorithm list
is pinned to the one configured (§3.1, never `none`, never a symmetric and
asymmetric mix), the key is chosen by `kid` among ours only, every claim we rely
on is required, and `typ` separates access tokens from anything else (§3.11).
PyJWT's exceptions never leave this module: callers see `InvalidToken` or its
subclass `TokenExpired`, each carrying the wire `code`.
"""

import base64
import json
import secrets
import time
from dataclasses import dataclass

import jwt
from django.conf import settings

from accounts.keys import keyring

MAX_TOKEN_BYTES = 4096
ACCESS_TYPE = "access"
REQUIRED_CLAIMS = ["iss", "aud", "sub", "sid", "iat", "exp", "jti", "typ"]
TIME_CLAIMS = ("exp", "iat", "nbf")


class InvalidToken(Exception):
    """The token cannot be trusted; `reason` is for logs, never for clients."""

    code = "invalid_token"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class TokenExpired(InvalidToken):
    """Well formed and correctly signed, but past `exp` + leeway."""

    code = "token_expired"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    sid: str
    exp: int
    iat: int
    jti: str


def encode_access(
    *, user_id: int, sid: str, now: int | None = None, ttl: int | None = None
) -> tuple[str, int]:
    """Sign an access token for a session; returns `(token, exp)`."""
    keys = keyring()
    issued_at = int(time.time()) if now is None else now
    expires = issued_at + (settings.AUTHSOCKET_ACCESS_TTL if ttl is None else ttl)
    claims = {
        "iss": settings.AUTHSOCKET_JWT_ISSUER,
        "aud": settings.AUTHSOCKET_JWT_AUDIENCE,
        "sub": str(user_id),
        "sid": sid,
        "iat": issued_at,
        "exp": expires,
        "jti": secrets.token_urlsafe(12),
        "typ": ACCESS_TYPE,
    }
    token = jwt.encode(
        claims,
        keys.signing_key,
        algorithm=keys.algorithm,
        headers={"kid": keys.signing_kid},
    )
    return token, expires


def decode_access(token: object) -> AccessClaims:
    """Verify an access token completely, or raise `InvalidToken`/`TokenExpired`."""
    if not isinstance(token, str) or not token:
        raise InvalidToken("missing or not a string")
    # Refuse oversized input before any base64 or JSON parsing (docs/protocol.md §3).
    if (
        len(token) > MAX_TOKEN_BYTES
        or len(token.encode("utf-8", "replace")) > MAX_TOKEN_BYTES
    ):
        raise InvalidToken("token too large")
    keys = keyring()
    try:
        key = keys.verification_keys.get(_kid_of(token))
        if key is None:
            raise InvalidToken("unknown kid")
        payload = jwt.decode(
            token,
            key,
            algorithms=[keys.algorithm],
            audience=settings.AUTHSOCKET_JWT_AUDIENCE,
            issuer=settings.AUTHSOCKET_JWT_ISSUER,
            # Times are checked below, once their type is known to be right:
            # PyJWT would take "123", 1.5 or true for a time.
            options={
                "require": REQUIRED_CLAIMS,
                "strict_aud": True,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError) as exc:
        raise InvalidToken(type(exc).__name__) from exc
    _check_times(payload)
    return _access_claims(payload)


def _check_times(payload: dict) -> None:
    """`exp`, `iat` and `nbf` (if present) are integers (RFC 7519 §2 NumericDate,
    which our tokens never write as fractions) and hold now, with leeway."""
    for name in TIME_CLAIMS:
        value = payload.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidToken(f"{name} is not an integer")
    now, leeway = time.time(), settings.AUTHSOCKET_LEEWAY
    if payload["iat"] > now + leeway:
        raise InvalidToken("issued in the future")  # RFC 7519 §4.1.6
    if payload.get("nbf", 0) > now + leeway:
        raise InvalidToken("not yet valid")  # RFC 7519 §4.1.5
    if payload["exp"] <= now - leeway:
        raise TokenExpired("expired")  # RFC 7519 §4.1.4


def _kid_of(token: str) -> object:
    """The header's `kid`, read only to pick the key among ours.

    `jwt.get_unverified_header` would parse and check the whole token, which
    `jwt.decode` then does again: a fifth of a handshake's token cost. The
    header is still verified in full by `jwt.decode`, with the key picked here.
    """
    segment = token.partition(".")[0]
    header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return header.get("kid") if isinstance(header, dict) else None


def _access_claims(payload: dict) -> AccessClaims:
    """Check the claims PyJWT does not know about and type the result."""
    if payload.get("typ") != ACCESS_TYPE:
        raise InvalidToken("not an access token")
    sub, sid, jti = payload["sub"], payload["sid"], payload["jti"]
    if not (isinstance(sub, str) and sub.isascii() and sub.isdigit() and len(sub) < 20):
        raise InvalidToken("bad sub")
    if not (isinstance(sid, str) and 0 < len(sid) <= 64):
        raise InvalidToken("bad sid")
    if not isinstance(jti, str):
        raise InvalidToken("bad jti")
    return AccessClaims(
        user_id=int(sub),
        sid=sid,
        exp=payload["exp"],
        iat=payload["iat"],
        jti=jti,
    )


def public_jwks() -> dict | None:
    """The JWKS document of our verification keys; None under HS256."""
    return keyring().jwks
