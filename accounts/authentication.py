"""The HTTP API's two authentications, one per kind of caller.

`Authorization: Bearer <access JWT>` authenticates users everywhere but
`/api/server/`; `Authorization: ApiKey <service key>` authenticates other
backends on `/api/server/` only. A view lists exactly one of them: DRF takes
`WWW-Authenticate` from the first class, so each world answers its own
scheme, and the other world's header is simply "no credentials".

Every request re-checks the session (or the key) in the database, so a
credential stops working the moment its revocation commits. The Bearer
header is read by `accounts.bearer`, exactly as the WebSocket handshake reads it.
"""

from dataclasses import dataclass

from rest_framework import authentication, exceptions

from accounts.bearer import MalformedBearer, bearer_token
from accounts.errors import InvalidServiceKey
from accounts.models import AuthSession, ServiceKey
from accounts.selectors import live_session
from accounts.service_keys import service_key_authenticate
from accounts.throttles import ServiceKeyFailureThrottle
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
        return "Bearer"


_DETAILS = {
    "invalid_token": "Invalid token.",
    "token_expired": "The access token has expired; refresh it.",
}


@dataclass(frozen=True)
class ServiceCaller:
    """`request.user` of a server API request: a backend, not a person."""

    key: ServiceKey
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_staff: bool = False
    pk: None = None

    def __str__(self) -> str:
        return f"service {self.key.name}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: ApiKey <key>`; failed attempts are throttled per address.

    The throttle is asked only after a key failed, so a valid key is never
    throttled, even from an address that keeps sending bad ones.
    """

    keyword = b"apikey"
    failure_throttle = ServiceKeyFailureThrottle

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        try:
            if len(header) != 2:
                raise InvalidServiceKey()
            key = service_key_authenticate(raw=header[1].decode("ascii"))
        except (InvalidServiceKey, UnicodeDecodeError):
            self._count_failure(request)
            raise AuthenticationFailed(
                InvalidServiceKey.default_detail, code=InvalidServiceKey.code
            ) from None
        return ServiceCaller(key), key

    def _count_failure(self, request) -> None:
        throttle = self.failure_throttle()
        if not throttle.allow_request(request, None):
            raise exceptions.Throttled(throttle.wait())

    def authenticate_header(self, request) -> str:
        return "ApiKey"
