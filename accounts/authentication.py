"""`Authorization: Bearer <access JWT>`: the HTTP API's only authentication.

Every request re-checks the session and the user in the database, so an
access token stops working on the API the moment its session is revoked. The
header is read by `accounts.bearer`, exactly as the WebSocket handshake reads it.
"""

from dataclasses import dataclass

from rest_framework import authentication, exceptions

from accounts.bearer import MalformedBearer, bearer_token
from accounts.models import AuthSession
from accounts.selectors import live_session
from accounts.tokens import AccessClaims, InvalidToken, decode_access


@dataclass(frozen=True)
class BearerAuth:
    """`request.auth` of an authenticated API request."""

    claims: AccessClaims
    session: AuthSession


class AuthenticationFailed(exceptions.AuthenticationFailed):
    pass


def session_for_claims(claims: AccessClaims) -> AuthSession:
    """The live session of verified claims, with its user; or `revoked`."""
    session = live_session(sid=claims.sid, user_id=claims.user_id)
    if session is None:
        raise AuthenticationFailed("The session has been revoked.", code="revoked")
    return session


class BearerAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.headers.get("authorization", "")
        if isinstance(header, bytes):
            header = header.decode("latin-1")
        try:
            token = bearer_token(header)
        except MalformedBearer:
            raise AuthenticationFailed(
                "Malformed Authorization header.", code="invalid_token"
            ) from None
        if token is None:
            return None
        try:
            claims = decode_access(token)
        except InvalidToken as exc:
            raise AuthenticationFailed(_DETAILS[exc.code], code=exc.code) from exc
        session = session_for_claims(claims)
        return session.user, BearerAuth(claims, session)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


_DETAILS = {
    "invalid_token": "Invalid token.",
    "token_expired": "The access token has expired; refresh it.",
}
