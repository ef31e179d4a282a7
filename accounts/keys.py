"""The signing and verification keys of access tokens, with their `kid`s.

HS256 uses one shared secret. The asymmetric algorithms sign with the private
key and verify with its public key plus any older public keys listed, so keys
can be rotated without logging anyone out: tokens name their key by `kid`
(RFC 7515 §4.1.4), an RFC 7638 thumbprint of the public key.
"""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_KEY_TYPES = {
    "RS256": rsa.RSAPublicKey,
    "ES256": ec.EllipticCurvePublicKey,
    "EdDSA": ed25519.Ed25519PublicKey,
}


@dataclass(frozen=True)
class Keyring:
    algorithm: str
    signing_kid: str
    signing_key: Any
    verification_keys: dict[str, Any]  # kid → key
    jwks: dict | None  # public keys for /.well-known/jwks.json; None under HS256


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def public_jwk(key: Any) -> dict[str, str]:
    """The RFC 7517 JWK of a public key (the members RFC 7638 requires)."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"kty": "RSA", "n": _uint(numbers.n), "e": _uint(numbers.e)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ImproperlyConfigured("ES256 needs a P-256 key.")
        numbers = key.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
        }
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}
    raise ImproperlyConfigured(f"Unsupported key type {type(key).__name__}.")


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638: SHA-256 of the required members, sorted, without whitespace."""
    canonical = json.dumps(jwk, sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def _read_pem(path: str, *, private: bool) -> Any:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImproperlyConfigured(f"Cannot read key file {path}: {exc}") from exc
    try:
        if private:
            return serialization.load_pem_private_key(data, password=None)
        return serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{path} is not a PEM key: {exc}") from exc
    except (TypeError, UnsupportedAlgorithm) as exc:  # encrypted, or unknown
        raise ImproperlyConfigured(
            f"{path} cannot be used: {exc}. The key must be PEM without a passphrase."
        ) from exc


def _check_type(algorithm: str, public_key: Any, path: str) -> None:
    if not isinstance(public_key, _KEY_TYPES[algorithm]):
        raise ImproperlyConfigured(
            f"{path} does not hold a key usable with {algorithm}."
        )


@lru_cache(maxsize=4)
def _build(
    algorithm: str, secret: str, private_file: str, public_files: tuple
) -> Keyring:
    if algorithm == "HS256":
        kid = hmac.new(secret.encode(), b"kid", hashlib.sha256).hexdigest()[:16]
        return Keyring(algorithm, kid, secret, {kid: secret}, None)
    private_key = _read_pem(private_file, private=True)
    signing_public = private_key.public_key()
    _check_type(algorithm, signing_public, private_file)
    public_keys = [signing_public]
    for path in public_files:
        public_key = _read_pem(path, private=False)
        _check_type(algorithm, public_key, path)
        public_keys.append(public_key)
    verification, published = {}, []
    for public_key in public_keys:
        jwk = public_jwk(public_key)
        kid = thumbprint(jwk)
        if kid not in verification:
            verification[kid] = public_key
            published.append({**jwk, "kid": kid, "alg": algorithm, "use": "sig"})
    signing_kid = thumbprint(public_jwk(signing_public))
    return Keyring(
        algorithm, signing_kid, private_key, verification, {"keys": published}
    )


def keyring() -> Keyring:
    """The keys for the current settings (cached; settings are read each call)."""
    return _build(
        settings.AUTHSOCKET_JWT_ALGORITHM,
        settings.AUTHSOCKET_JWT_SECRET or "",
        settings.AUTHSOCKET_JWT_PRIVATE_KEY_FILE or "",
        tuple(settings.AUTHSOCKET_JWT_PUBLIC_KEY_FILES or ()),
    )
