"""Generate `tests/data/bad_tokens.json`: access tokens that must never pass.

    python -m tests.data.make_bad_tokens          # rewrite the file
    python -m tests.data.make_bad_tokens --check  # exit 1 if it is stale

Deterministic on purpose, so the committed file is stable, reviewable and
usable by black-box tools (bench, other services): times are fixed (expired in
2001, "future" in 2100), signatures use the TEST secret from pyproject.toml
(HMAC and Ed25519 signatures are deterministic), and the foreign asymmetric key
is derived from a fixed seed. `tests/reliability/test_bad_tokens.py` checks the
file is what this script produces and that the secret is the one tests run with.

Each case: `name`, `reason` (why it must be refused), `token` (a string; JSON
escapes keep lone surrogates and control characters intact) and `code`, the
401 code the HTTP API must answer (`invalid_token`, `token_expired` or
`revoked`). Forged with tests/tokens.py: nothing beyond `cryptography` and PyJWT.
"""

import hashlib
import json
import sys
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.tokens import TEST_KID, TEST_SECRET, access_claims, b64, hs256, segment

OUTPUT = Path(__file__).with_name("bad_tokens.json")
PAST = 1_000_000_000  # 2001-09-09
ISSUED = 1_700_000_000  # 2023-11-14
FUTURE = 4_102_444_800  # 2100-01-01
MAX_TOKEN_BYTES = 4096
FOREIGN_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(
    hashlib.sha256(b"authsocket bad-token corpus: attacker key").digest()
)
FOREIGN_PUBLIC_PEM = FOREIGN_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def claims(**overrides) -> dict:
    """A claim set that is valid in every respect but the overrides (`...` drops)."""
    fields = {"sub": "1", "sid": "corpus-session", "iat": ISSUED, "exp": FUTURE}
    return access_claims(**{**fields, "jti": "corpus", **overrides})


def header(**overrides) -> dict:
    base = {"alg": "HS256", "typ": "JWT", "kid": TEST_KID}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def signed(
    payload=None, head=None, *, key: bytes = TEST_SECRET.encode(), digest=hashlib.sha256
) -> str:
    """HS256 over arbitrary JSON (or raw bytes), bypassing PyJWT's own checks."""
    head_bytes = json.dumps(header() if head is None else head).encode()
    if isinstance(payload, bytes):
        payload_bytes = payload
    else:
        payload_bytes = json.dumps(claims() if payload is None else payload).encode()
    return hs256(b64(head_bytes), b64(payload_bytes), key, digest)


def segments(head, payload, signature: str = "") -> str:
    return f"{segment(head)}.{segment(payload)}.{signature}"


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _cases() -> list[tuple[str, str, str, str]]:
    """(name, reason, token, code) — the corpus."""
    good = signed()
    good_head, good_body, good_sig = good.split(".")
    other = signed(claims(jti="other"))
    inv, exp_, rev = "invalid_token", "token_expired", "revoked"
    cases = [
        (
            "expired",
            "exp in 2001, far beyond the leeway",
            signed(claims(exp=PAST)),
            exp_,
        ),
        (
            "expired and issued in the past",
            "iat and exp both in 2001",
            signed(claims(iat=PAST - 300, exp=PAST)),
            exp_,
        ),
        ("nbf in the future", "not valid before 2100", signed(claims(nbf=FUTURE)), inv),
        ("iat in the future", "issued in 2100", signed(claims(iat=FUTURE - 1)), inv),
        ("wrong iss", "issuer is someone else", signed(claims(iss="evil")), inv),
        ("empty iss", "issuer is empty", signed(claims(iss="")), inv),
        ("iss not a string", "issuer is a number", signed(claims(iss=5)), inv),
        ("wrong aud", "audience is another service", signed(claims(aud="other")), inv),
        ("aud list without ours", "aud ['x','y']", signed(claims(aud=["x", "y"])), inv),
        ("aud null", "aud is JSON null", signed(claims(aud=None)), inv),
        *[
            (
                f"missing {name}",
                f"required claim {name} absent",
                signed(claims(**{name: ...})),
                inv,
            )
            for name in ("iss", "aud", "sub", "sid", "iat", "exp", "jti", "typ")
        ],
        ("typ refresh", "not an access token", signed(claims(typ="refresh")), inv),
        ("typ case", "typ 'ACCESS' is not 'access'", signed(claims(typ="ACCESS")), inv),
        ("sub not a string", "sub is the number 1", signed(claims(sub=1)), inv),
        ("sub negative", "sub '-1'", signed(claims(sub="-1")), inv),
        ("sub not a number", "sub 'alice'", signed(claims(sub="alice")), inv),
        (
            "sub unicode digits",
            "sub of Arabic-Indic digits",
            signed(claims(sub="١٢")),
            inv,
        ),
        ("sub huge", "sub of 30 digits", signed(claims(sub="9" * 30)), inv),
        ("sid empty", "sid ''", signed(claims(sid="")), inv),
        ("sid too long", "sid of 65 characters", signed(claims(sid="s" * 65)), inv),
        ("sid not a string", "sid is a number", signed(claims(sid=7)), inv),
        ("jti not a string", "jti is an object", signed(claims(jti={"a": 1})), inv),
        ("exp not a number", "exp 'tomorrow'", signed(claims(exp="tomorrow")), inv),
        (
            "exp overflows",
            "exp 1e400 parses to infinity",
            signed(json.dumps(claims()).replace(str(FUTURE), "1e400").encode()),
            inv,
        ),
        (
            "exp NaN",
            "exp NaN (accepted by Python's json)",
            signed(json.dumps(claims()).replace(str(FUTURE), "NaN").encode()),
            inv,
        ),
        ("iat not a number", "iat 'now'", signed(claims(iat="now")), inv),
        # Times are integers (§3): PyJWT alone takes "4102444800" and 1.5 as times.
        ("exp numeric string", "exp '2100'", signed(claims(exp=str(FUTURE))), inv),
        ("exp float", "exp 2100 as a float", signed(claims(exp=FUTURE + 0.5)), inv),
        ("exp bool", "exp true", signed(claims(exp=True)), inv),
        ("iat numeric string", "iat as text", signed(claims(iat=str(ISSUED))), inv),
        ("iat float", "iat as a float", signed(claims(iat=ISSUED + 0.5)), inv),
        ("nbf numeric string", "nbf as text", signed(claims(nbf=str(ISSUED))), inv),
        ("nbf float", "nbf as a float", signed(claims(nbf=ISSUED + 0.5)), inv),
        (
            "unknown session",
            "well formed and signed, but no such session",
            signed(claims(sid="no-such-session")),
            rev,
        ),
        ("alg none", "unsigned, alg none", segments(header(alg="none"), claims()), inv),
        (
            "alg none with signature",
            "alg none, a signature copied from a good token",
            segments(header(alg="none"), claims(), good_sig),
            inv,
        ),
        (
            "alg None",
            "alg 'None' capitalised",
            segments(header(alg="None"), claims()),
            inv,
        ),
        (
            "alg missing",
            "header without alg, valid HMAC",
            signed(claims(), header(alg=...)),
            inv,
        ),
        ("alg list", "alg ['HS256']", signed(claims(), header(alg=["HS256"])), inv),
        (
            "alg HS512",
            "HS512 with our secret: not the pinned algorithm",
            signed(head=header(alg="HS512"), digest=hashlib.sha512),
            inv,
        ),
        (
            "alg HS384",
            "HS384 with our secret: not the pinned algorithm",
            signed(head=header(alg="HS384"), digest=hashlib.sha384),
            inv,
        ),
        (
            "other secret",
            "HS256 signed with a secret that is not ours",
            signed(key=b"another-secret-0123456789-0123456789"),
            inv,
        ),
        (
            "alg confusion",
            "HS256 keyed with a public key's PEM (RFC 8725 §2.1)",
            signed(key=FOREIGN_PUBLIC_PEM),
            inv,
        ),
        (
            "foreign EdDSA",
            "EdDSA signed by an attacker's key, our kid",
            jwt.encode(claims(), FOREIGN_KEY, "EdDSA", headers={"kid": TEST_KID}),
            inv,
        ),
        (
            "embedded jwk",
            "attacker's key in the jwk header, signed with it",
            jwt.encode(
                claims(),
                FOREIGN_KEY,
                "EdDSA",
                headers={"kid": TEST_KID, "jwk": {"kty": "OKP", "crv": "Ed25519"}},
            ),
            inv,
        ),
        (
            "alg RS256 garbage signature",
            "RS256 header, random signature",
            segments(header(alg="RS256"), claims(), b64(b"\x00" * 256)),
            inv,
        ),
        (
            "crit header",
            "unknown critical header",
            signed(claims(), header(crit=["exp"])),
            inv,
        ),
        (
            "payload tampered",
            "sub changed after signing",
            f"{good_head}.{b64(json.dumps(claims(sub='2')).encode())}.{good_sig}",
            inv,
        ),
        (
            "header tampered",
            "kid changed after signing",
            f"{b64(json.dumps(header(kid='x')).encode())}.{good_body}.{good_sig}",
            inv,
        ),
        ("signature truncated", "last 4 characters cut", good[:-4], inv),
        (
            "signature empty",
            "no third segment content",
            f"{good_head}.{good_body}.",
            inv,
        ),
        (
            "signature swapped",
            "another token's signature",
            f"{good_head}.{good_body}.{other.rsplit('.', 1)[1]}",
            inv,
        ),
        (
            "signature bit flip",
            "one signature character changed",
            good[:-1] + ("A" if good[-1] != "A" else "B"),
            inv,
        ),
        (
            "unknown kid",
            "kid that is not ours",
            signed(claims(), header(kid="nope")),
            inv,
        ),
        ("kid missing", "no kid in the header", signed(claims(), header(kid=...)), inv),
        (
            "kid path",
            "kid '../../dev/null'",
            signed(claims(), header(kid="../../dev/null")),
            inv,
        ),
        (
            "kid list",
            "kid is a JSON list",
            signed(claims(), header(kid=[TEST_KID])),
            inv,
        ),
        (
            "oversize signed",
            "5 KiB of padding claims, validly signed",
            signed(claims(pad="x" * 5 * 1024)),
            inv,
        ),
        ("oversize junk", "4097 characters", "a" * (MAX_TOKEN_BYTES + 1), inv),
        (
            "oversize in UTF-8",
            "2000 characters but 6000 UTF-8 bytes",
            "\u20ac" * 2000,
            inv,
        ),
        (
            "header not JSON",
            "header segment is text",
            f"{b64(b'not json')}.{good_body}.{good_sig}",
            inv,
        ),
        ("payload not JSON", "signed payload is text", signed(b"not json"), inv),
        ("payload JSON array", "signed payload is [1,2]", signed(b"[1,2]"), inv),
        ("payload JSON string", "signed payload is a string", signed(b'"access"'), inv),
        (
            "header JSON array",
            "header is [1]",
            f"{b64(b'[1]')}.{good_body}.{good_sig}",
            inv,
        ),
        ("payload deeply nested", "1000-deep JSON arrays", signed(nested(1000)), inv),
        (
            "header deeply nested",
            "1000-deep JSON header",
            f"{b64(nested(1000))}.{good_body}.x",
            inv,
        ),
        ("bad base64", "characters outside base64url", "!!!.@@@.###", inv),
        ("base64 padding junk", "segments of '='", "===.===.===", inv),
        ("one segment", "no dots", "abcdef", inv),
        ("two segments", "header.payload only", f"{good_head}.{good_body}", inv),
        ("four segments", "an extra segment", good + ".extra", inv),
        ("five segments", "JWE-shaped", "a.b.c.d.e", inv),
        ("only dots", "three empty segments", "..", inv),
        ("empty", "the empty string", "", inv),
        ("whitespace", "spaces only", "   ", inv),
        (
            "space inside",
            "a good token with a space in it",
            f"{good_head}. {good_body}.{good_sig}",
            inv,
        ),
        ("bearer inside", "'Bearer ' repeated inside the token", f"Bearer {good}", inv),
        ("unicode junk", "non-ASCII text", "ünïcödé.☃.💥", inv),
        (
            "lone surrogate",
            "UTF-16 half that UTF-8 cannot encode",
            "\ud800.\udfff.\ud800",
            inv,
        ),
        ("NUL bytes", "NUL characters", "\x00.\x00.\x00", inv),
        (
            "control characters",
            "CR LF and a fake header",
            "a.b.c\r\nX-Injected: 1",
            inv,
        ),
        ("url-encoded", "percent-encoded dots", good.replace(".", "%2E"), inv),
        ("quoted", "a good token in double quotes", f'"{good}"', inv),
    ]
    return cases


def bad_tokens() -> list[dict]:
    cases = [
        {"name": name, "reason": reason, "token": token, "code": code}
        for name, reason, token, code in _cases()
    ]
    names = [case["name"] for case in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


def render() -> str:
    document = {
        "about": "Generated by tests/data/make_bad_tokens.py; do not edit by hand.",
        "secret": "the TEST secret of pyproject.toml (AUTHSOCKET_JWT_SECRET)",
        "kid": TEST_KID,
        "cases": bad_tokens(),
    }
    return json.dumps(document, indent=1) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run python -m {__spec__.name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {len(bad_tokens())} cases to {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
