"""Turn a handshake's credential into a user (docs/protocol.md §4.1).

Never raises: every failure becomes `AnonymousUser` plus a reason in
`scope["auth"]`, and the consumer refuses the connection. A database failure
is a refusal too; the consumer logs each refusal's reason once (never the
credential).
"""

import time
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError

from accounts.errors import AuthError
from accounts.services import ticket_consume
from accounts.tokens import InvalidToken, decode_access
from core import metrics
from realtime.credentials import BadCredential, Credential, credential_of
from realtime.protocol import Transport
from realtime.session_guard import SessionRefused, guard

DATABASE_UNAVAILABLE = "database unavailable"


@dataclass(frozen=True, slots=True)
class HandshakeAuth:
    """`scope["auth"]`: how the socket authenticated, or why it could not."""

    transport: Transport | None = None
    sid: str | None = None
    expires_at: int | None = None
    # The token's own lifetime (`exp - iat`), which sets its expiry warning;
    # None for a ticket. Not the claims: a socket keeps only what it uses.
    lifetime: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def unavailable(self) -> bool:
        """Refused because the database failed, not because of the credential."""
        return bool(self.error and self.error.startswith(DATABASE_UNAVAILABLE))


async def authenticate_scope(scope: dict) -> tuple[object, HandshakeAuth]:
    """`(user, auth)` for `scope["user"]` and `scope["auth"]`."""
    transport = None  # kept on refusals too: metrics count them per transport
    try:
        credential = credential_of(scope)
        if credential is None:
            return AnonymousUser(), HandshakeAuth(error="no credential")
        transport = credential.transport
        if credential.transport is Transport.TICKET:
            return await _from_ticket(credential)
        return await _from_access_token(credential)
    except BadCredential as exc:
        return AnonymousUser(), HandshakeAuth(error=f"bad credential: {exc}")
    except InvalidToken as exc:
        error = f"{exc.code}: {exc.reason}"
        return AnonymousUser(), HandshakeAuth(transport, error=error)
    except SessionRefused as exc:
        return AnonymousUser(), HandshakeAuth(
            transport, error=f"session refused: {exc}"
        )
    except AuthError as exc:  # a ticket unknown, used or expired
        return AnonymousUser(), HandshakeAuth(transport, error=f"{exc.code}: {exc}")
    except (DatabaseError, OSError) as exc:
        metrics.database_error("handshake")
        # Not logged here: the consumer logs every refusal once, with this reason.
        error = f"{DATABASE_UNAVAILABLE} ({type(exc).__name__})"
        return AnonymousUser(), HandshakeAuth(transport, error=error)


async def _from_access_token(credential: Credential) -> tuple[object, HandshakeAuth]:
    claims = decode_access(credential.value)
    user = await guard.check(sid=claims.sid, user_id=claims.user_id)
    auth = HandshakeAuth(
        credential.transport, claims.sid, claims.exp, claims.exp - claims.iat
    )
    return user, auth


async def _from_ticket(credential: Credential) -> tuple[object, HandshakeAuth]:
    """A ticket lives on after its HTTP request; it dies with the access token,
    when that token would: at its `exp` plus the leeway every check allows."""
    ticket = await database_sync_to_async(ticket_consume)(ticket=credential.value)
    if ticket.access_expires_at + settings.AUTHSOCKET_LEEWAY <= time.time():
        raise InvalidToken("ticket's access token expired")
    session = ticket.session
    user = await guard.check(sid=session.sid, user_id=session.user_id)
    auth = HandshakeAuth(credential.transport, session.sid, ticket.access_expires_at)
    return user, auth
