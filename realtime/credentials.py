"""Where a handshake carries its credential (docs/protocol.md §4.1).

An ordered list of small readers, one per transport. The first credential
PRESENT is the only one considered: if it is malformed the handshake is
refused, never retried with the next transport (no fall-through), so a client
cannot smuggle a second credential past a broken first one.
"""

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from django.conf import settings

from accounts.bearer import MalformedBearer, bearer_token
from realtime.protocol import SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX, Transport


class BadCredential(Exception):
    """A credential is present but malformed; the message is a log reason."""


@dataclass(frozen=True)
class Credential:
    transport: Transport
    value: str


def from_subprotocols(scope: dict, params: dict) -> Credential | None:
    offered = list(scope.get("subprotocols") or ())
    tokens = [p for p in offered if p.startswith(TOKEN_SUBPROTOCOL_PREFIX)]
    if not tokens:
        return None  # offering only authsocket.v1 is not a credential
    if len(tokens) > 1:
        raise BadCredential("more than one token subprotocol")
    if SUBPROTOCOL not in offered:
        raise BadCredential(f"token subprotocol without {SUBPROTOCOL}")
    return Credential(Transport.SUBPROTOCOL, tokens[0][len(TOKEN_SUBPROTOCOL_PREFIX) :])


def from_authorization_header(scope: dict, params: dict) -> Credential | None:
    """`Authorization: Bearer <jwt>`; a header of another scheme is no credential.

    A browser sends the Basic credentials of a site behind HTTP
    authentication (nginx's `auth_basic` on a staging host) with its
    WebSocket handshakes too: they belong to the proxy, and the ticket or
    token behind them is the socket's credential. A Bearer header that is
    malformed is present, and refused.
    """
    values = [v for k, v in scope.get("headers", ()) if k == b"authorization"]
    if not values:
        return None
    if len(values) > 1:
        raise BadCredential("repeated Authorization header")
    try:
        token = bearer_token(values[0].decode("latin-1"))
    except MalformedBearer as exc:
        raise BadCredential(f"Authorization header: {exc}") from None
    if token is None:
        return None
    return Credential(Transport.HEADER, token)


def _query_value(params: dict, name: str, transport: Transport) -> Credential | None:
    values = params.get(name)
    if values is None:
        return None
    if len(values) > 1:
        raise BadCredential(f"repeated {name} parameter")
    return Credential(transport, values[0])


def from_ticket(scope: dict, params: dict) -> Credential | None:
    return _query_value(params, "ticket", Transport.TICKET)


def from_query_token(scope: dict, params: dict) -> Credential | None:
    credential = _query_value(params, "token", Transport.QUERY_TOKEN)
    if credential is not None and not settings.AUTHSOCKET_QUERY_TOKEN:
        raise BadCredential("?token= is disabled (AUTHSOCKET_QUERY_TOKEN=0)")
    return credential


READERS: list[Callable[[dict, dict], Credential | None]] = [
    from_subprotocols,
    from_authorization_header,
    from_ticket,
    from_query_token,
]


def query_params(scope: dict) -> dict[str, list[str]]:
    raw = scope.get("query_string", b"").decode("latin-1")
    return parse_qs(raw, keep_blank_values=True)


def credential_of(scope: dict) -> Credential | None:
    """The handshake's one credential, None when there is none at all."""
    params = query_params(scope)
    for name in ("ticket", "token"):
        if len(params.get(name, ())) > 1:
            raise BadCredential(f"repeated {name} parameter")
    for reader in READERS:
        credential = reader(scope, params)
        if credential is not None:
            return credential
    return None
