"""The client's errors: one small hierarchy, each carrying the wire `code`.

Catch `AuthSocketError` for everything; `CredentialsRejected` means stop and
sign in again (or use another service key); `transient` says whether a retry
may help.
"""

from __future__ import annotations

# HTTP 401 codes that mean the credentials are dead: retrying cannot help.
DEAD_CREDENTIAL_CODES = frozenset(
    {
        "not_authenticated",
        "invalid_credentials",
        "invalid_token",
        "revoked",
        "token_reused",
        "session_expired",
        "invalid_key",
    }
)


class AuthSocketError(Exception):
    """A failure with the wire `code` (HTTP `code`, error frame `code`, or ours)."""

    def __init__(
        self,
        code: str,
        detail: str = "",
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.status = status
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """True when the same call may succeed later (throttled, 5xx, network)."""
        return self.status is None or self.status == 429 or self.status >= 500


class NetworkError(AuthSocketError):
    """The server could not be reached or did not answer in time."""

    def __init__(self, detail: str):
        super().__init__("network", detail)


class NotLive(NetworkError, TimeoutError):
    """The socket was not live before the caller's timeout ran out.

    Also a TimeoutError, which `wait_live()` raised before it was typed.
    """


class ApiError(AuthSocketError):
    """The HTTP API answered with an error (`{"detail", "code"}`)."""

    @property
    def transient(self) -> bool:
        return self.status == 429 or (self.status or 0) >= 500


class CredentialsRejected(ApiError):
    """The credentials are dead (revoked, expired session, bad key): sign in again.

    Raised by HTTP calls (401 with a dead code) and by the socket (close 4403,
    or a refused handshake the HTTP API explains this way). Never retried.
    """


class TokenRotated(ApiError):
    """A refresh raced another holder of the same refresh token and lost."""


class FrameError(AuthSocketError):
    """The server answered a frame with `{"type": "error", "code": ...}`."""

    @property
    def transient(self) -> bool:
        return self.code == "rate_limited"


class Disconnected(AuthSocketError):
    """The socket closed before a request was answered; it was not resent."""

    def __init__(self, detail: str = "the socket closed before the answer"):
        super().__init__("disconnected", detail)


class NotJson(AuthSocketError, ValueError):
    """Data the client will not send: not strict JSON (NaN, infinity, an
    object JSON has no form for) or not UTF-8 (a lone surrogate). The server
    could not parse the frame, nor say which request it refused: the call
    would wait out its timeout. Raised before anything is sent; a retry
    cannot help. Also a ValueError, as json.dumps raises for it."""

    def __init__(self, detail: str):
        super().__init__("not_json", detail)

    @property
    def transient(self) -> bool:
        return False


class ConnectionStopped(AuthSocketError):
    """The socket stopped for good: a client bug (4413, 4415) or too many refusals.

    `close_code` is the WebSocket close code when there was one.
    """

    def __init__(self, code: str, detail: str = "", *, close_code: int | None = None):
        super().__init__(code, detail)
        self.close_code = close_code

    @property
    def transient(self) -> bool:
        return False


class TokenFileUnreadable(AuthSocketError, OSError):
    """The token file exists but cannot be read as one (not JSON, not an
    object, an I/O error). Never treated as empty: a save would replace it,
    and with it the sessions it holds for other servers. Also an OSError."""

    def __init__(self, path: object, why: str):
        super().__init__(
            "token_file_unreadable",
            f"{path}: {why}; move it away (or delete it) and sign in again",
        )

    @property
    def transient(self) -> bool:
        return False


def api_error(status: int, body: object, retry_after: float | None) -> ApiError:
    """The typed error for an HTTP error answer."""
    code, detail = f"http_{status}", ""
    if isinstance(body, dict):
        if isinstance(body.get("code"), str):
            code = body["code"]
        if isinstance(body.get("detail"), str):
            detail = body["detail"]
    if status == 401 and code == "token_rotated":
        return TokenRotated(code, detail, status=status)
    if status == 401 and code in DEAD_CREDENTIAL_CODES:
        return CredentialsRejected(code, detail, status=status)
    return ApiError(code, detail, status=status, retry_after=retry_after)
