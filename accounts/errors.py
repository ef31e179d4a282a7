"""Typed errors of the account services, each with its wire `code`.

Services raise these; interfaces (DRF views, the WebSocket consumer) map them
to an HTTP status or a close code in one place each.
"""


class AuthError(Exception):
    code = "invalid_token"
    default_detail = "Invalid credentials."

    def __init__(self, detail: str | None = None):
        super().__init__(detail or self.default_detail)
        self.detail = detail or self.default_detail


class InvalidCredentials(AuthError):
    code = "invalid_credentials"
    default_detail = "Invalid username or password."


class InvalidRefreshToken(AuthError):
    code = "invalid_token"
    default_detail = "Unknown refresh token."


class TokenRotated(AuthError):
    code = "token_rotated"
    default_detail = "This refresh token was just rotated; use the newest one."


class TokenReused(AuthError):
    code = "token_reused"
    default_detail = "Refresh token reused; the session has been revoked."


class SessionExpired(AuthError):
    code = "session_expired"
    default_detail = "The session has reached its maximum lifetime; sign in again."


class SessionRevoked(AuthError):
    code = "revoked"
    default_detail = "The session has been revoked."


class InvalidTicket(AuthError):
    code = "invalid_token"
    default_detail = "Unknown, used or expired ticket."


class WrongPassword(AuthError):
    code = "wrong_password"
    default_detail = "The current password is wrong."


class InvalidServiceKey(AuthError):
    code = "invalid_key"
    default_detail = "Unknown or revoked service key."


class ServiceKeyNameTaken(Exception):
    """`service_key create` with the name of a key that is still live."""
