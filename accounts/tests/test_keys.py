"""Asymmetric signing keys, rotation by `kid`, JWKS (docs/protocol.md §1, §3; RFC 8725).

Keys are generated into tmp_path and configured through settings overrides;
`keyring()` is cached per settings, so each override gets its own keys.
"""

import os
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from accounts.keys import keyring, public_jwk, thumbprint
from accounts.tokens import InvalidToken, decode_access, encode_access
from tests.servers import run_manage
from tests.tokens import access_claims, hs256, segment

GENERATORS = {
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
}


def write_key_pair(directory, name: str, algorithm: str):
    """Write `<name>.pem` (private) and `<name>.pub.pem`; returns both paths."""
    key = GENERATORS[algorithm]()
    private = directory / f"{name}.pem"
    public = directory / f"{name}.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    )
    return private, public


def configure(settings, algorithm: str, private, *public_files):
    settings.AUTHSOCKET_JWT_ALGORITHM = algorithm
    settings.AUTHSOCKET_JWT_PRIVATE_KEY_FILE = str(private)
    settings.AUTHSOCKET_JWT_PUBLIC_KEY_FILES = [str(p) for p in public_files]


@pytest.mark.parametrize("algorithm", GENERATORS)
def test_round_trip_with_each_asymmetric_algorithm(settings, tmp_path, algorithm):
    private, _ = write_key_pair(tmp_path, "current", algorithm)
    configure(settings, algorithm, private)
    token, exp = encode_access(user_id=7, sid="s-1")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == algorithm
    assert header["kid"] == keyring().signing_kid
    claims = decode_access(token)
    assert (claims.user_id, claims.sid, claims.exp) == (7, "s-1", exp)


@pytest.mark.parametrize("algorithm", GENERATORS)
def test_rotation_old_key_still_verifies_new_key_signs(settings, tmp_path, algorithm):
    old_private, old_public = write_key_pair(tmp_path, "old", algorithm)
    new_private, _ = write_key_pair(tmp_path, "new", algorithm)
    configure(settings, algorithm, old_private)
    old_token, _ = encode_access(user_id=7, sid="s-1")
    old_kid = keyring().signing_kid

    configure(settings, algorithm, new_private, old_public)  # rotated
    new_token, _ = encode_access(user_id=7, sid="s-1")
    assert jwt.get_unverified_header(new_token)["kid"] == keyring().signing_kid
    assert keyring().signing_kid != old_kid
    assert decode_access(old_token).user_id == 7  # still listed: still valid
    assert decode_access(new_token).user_id == 7

    configure(settings, algorithm, new_private)  # the old key retired
    with pytest.raises(InvalidToken):
        decode_access(old_token)


def test_token_signed_with_a_key_not_listed_is_refused(settings, tmp_path):
    ours, _ = write_key_pair(tmp_path, "ours", "RS256")
    theirs, _ = write_key_pair(tmp_path, "theirs", "RS256")
    configure(settings, "RS256", theirs)
    forged, _ = encode_access(user_id=7, sid="s-1")
    forged_with_our_kid = _resign_with_kid(forged, theirs, kid=None, settings=settings)
    configure(settings, "RS256", ours)
    with pytest.raises(InvalidToken, match="unknown kid"):
        decode_access(forged)
    with pytest.raises(InvalidToken):
        decode_access(forged_with_our_kid(keyring().signing_kid))


def _resign_with_kid(token, private_file, kid, settings):
    """A signer that claims any kid with the foreign private key."""
    payload = jwt.decode(token, options={"verify_signature": False})
    key = serialization.load_pem_private_key(private_file.read_bytes(), None)

    def sign(kid: str) -> str:
        return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})

    return sign


def test_alg_confusion_hs256_keyed_with_the_public_pem_is_refused(settings, tmp_path):
    """RFC 8725 §2.1: HMAC with the RSA public key as the secret."""
    private, public = write_key_pair(tmp_path, "current", "RS256")
    configure(settings, "RS256", private)
    now = int(time.time())
    claims = access_claims(sub="7", sid="s-1", iat=now, exp=now + 300, jti="j")
    header = {"alg": "HS256", "typ": "JWT", "kid": keyring().signing_kid}
    for secret in (public.read_bytes(), public.read_bytes().strip()):
        with pytest.raises(InvalidToken):
            decode_access(hs256(segment(header), segment(claims), secret))


def test_hs256_token_is_refused_when_rs256_is_configured(settings, tmp_path):
    hs_token, _ = encode_access(user_id=7, sid="s-1")  # the HS256 default
    private, _ = write_key_pair(tmp_path, "current", "RS256")
    configure(settings, "RS256", private)
    with pytest.raises(InvalidToken):
        decode_access(hs_token)


@pytest.mark.parametrize("algorithm", GENERATORS)
def test_jwks_lists_every_verification_key(settings, tmp_path, algorithm):
    current, _ = write_key_pair(tmp_path, "current", algorithm)
    _, previous = write_key_pair(tmp_path, "previous", algorithm)
    configure(settings, algorithm, current, previous)
    response = APIClient().get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert len(keys) == 2
    assert keys[0]["kid"] == keyring().signing_kid
    for jwk in keys:
        assert jwk["alg"] == algorithm and jwk["use"] == "sig"
        members = {k: v for k, v in jwk.items() if k not in {"kid", "alg", "use"}}
        assert thumbprint(members) == jwk["kid"]  # RFC 7638
        assert "d" not in jwk  # never a private member
        # The published key verifies tokens: what another service would do.
    token, _ = encode_access(user_id=7, sid="s-1")
    verifier = jwt.PyJWK(keys[0], algorithm=algorithm)
    payload = jwt.decode(
        token,
        verifier.key,
        algorithms=[algorithm],
        audience=settings.AUTHSOCKET_JWT_AUDIENCE,
    )
    assert payload["sub"] == "7"


def test_jwks_is_404_under_hs256():
    response = APIClient().get("/.well-known/jwks.json")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_key_of_the_wrong_type_is_a_configuration_error(settings, tmp_path):
    private, _ = write_key_pair(tmp_path, "ec", "ES256")
    configure(settings, "RS256", private)
    with pytest.raises(ImproperlyConfigured, match="RS256"):
        keyring()


def test_p384_key_is_refused_for_es256(settings, tmp_path):
    key = ec.generate_private_key(ec.SECP384R1())
    path = tmp_path / "p384.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    configure(settings, "ES256", path)
    with pytest.raises(ImproperlyConfigured):
        keyring()


def test_a_key_with_a_passphrase_is_a_configuration_error(settings, tmp_path):
    """A TypeError from cryptography before: a traceback naming no file."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "encrypted.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    configure(settings, "RS256", path)
    with pytest.raises(ImproperlyConfigured, match="without a passphrase"):
        keyring()


def test_kid_is_the_rfc7638_thumbprint(settings, tmp_path):
    private, public = write_key_pair(tmp_path, "current", "EdDSA")
    configure(settings, "EdDSA", private)
    key = serialization.load_pem_public_key(public.read_bytes())
    assert keyring().signing_kid == thumbprint(public_jwk(key))


def test_a_key_of_the_wrong_type_stops_the_process_at_start_up(tmp_path):
    private, _ = write_key_pair(tmp_path, "rsa", "RS256")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSOCKET_")}
    env.update(
        DJANGO_SETTINGS_MODULE="authsocket.settings",
        DJANGO_DEBUG="1",
        AUTHSOCKET_JWT_ALGORITHM="ES256",
        AUTHSOCKET_JWT_PRIVATE_KEY_FILE=str(private),
    )
    refused = run_manage(env, "check")
    assert refused.returncode != 0
    assert "does not hold a key usable with ES256" in refused.stderr
    right, _ = write_key_pair(tmp_path, "ec", "ES256")
    accepted = run_manage(
        {**env, "AUTHSOCKET_JWT_PRIVATE_KEY_FILE": str(right)}, "check"
    )
    assert accepted.returncode == 0, accepted.stderr
