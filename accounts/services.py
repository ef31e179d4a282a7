"""Login sessions: login, refresh with rotation, logout, tickets, passwords.

Interfaces (DRF views, admin, management commands) call these keyword-only
functions; the rules of docs/protocol.md §2–3 live here and nowhere else.
"""

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.errors import (
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidTicket,
    SessionExpired,
    SessionRevoked,
    TokenReused,
    TokenRotated,
    WrongPassword,
)
from accounts.models import AuthSession, RefreshToken, User, WebSocketTicket
from accounts.revocation import (
    session_revoke,
    sessions_revoke,
    user_sessions_lock,
    user_sessions_revoke,
    users_lock,
)
from accounts.tokens import encode_access

# A stolen access token must not guess the password forever, even at the
# throttle's pace: this many wrong old passwords in a row revoke its session.
PASSWORD_GUESS_LIMIT = 10
PASSWORD_GUESSING_REASON = "password_guessing"


@dataclass(frozen=True)
class IssuedTokens:
    access: str
    access_expires_at: int
    refresh: str
    session: AuthSession
    access_lifetime: int  # seconds, the answer's `expires_in`

    @property
    def user(self) -> User:
        return self.session.user


def credential_hash(value: str) -> str:
    """SHA-256 of a random credential (≥ 256 bits, so no salt or stretching)."""
    # surrogatepass: any client string hashes (to nothing we issued), no 500.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


# Far above what `new_credential` makes (43): longer strings were never issued.
MAX_CREDENTIAL_LENGTH = 256


def new_credential() -> str:
    return secrets.token_urlsafe(32)


def session_login(
    *, request, username: str, password: str, user_agent: str = "", client_address=None
) -> IssuedTokens:
    """Check the password and open a session.

    `authenticate()` hashes the password even for unknown users and refuses
    inactive ones after checking it, so all three failures take the same time
    and give the same answer (no user enumeration).
    """
    user = authenticate(request, username=username, password=password)
    if user is None:
        raise InvalidCredentials()
    with transaction.atomic():
        _credentials_hold(user)
        now = timezone.now()
        session = AuthSession.objects.create(
            sid=secrets.token_urlsafe(24),
            user=user,
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(seconds=settings.AUTHSOCKET_REFRESH_TTL),
            user_agent=(user_agent or "")[:256],
            client_address=client_address,
        )
        return _issue(session)


def _credentials_hold(user: User) -> None:
    """Lock the user's row and check it still holds what was authenticated.

    Hashing the password takes a while: a password change or a deactivation
    that commits meanwhile has already revoked every session it saw, so a
    session stored now would outlive it. Under the lock, a change either
    committed before (seen here: refused) or waits for this login's commit and
    then revokes its session too.
    """
    current = (
        users_lock(User.objects.filter(pk=user.pk))
        .values_list("password", "is_active")
        .first()
    )
    if current != (user.password, True):
        raise InvalidCredentials()


def session_open(
    *, user: User, user_agent: str = "", access_ttl: int | None = None
) -> IssuedTokens:
    """Open a session without a password (management commands, tests)."""
    now = timezone.now()
    session = AuthSession.objects.create(
        sid=secrets.token_urlsafe(24),
        user=user,
        expires_at=now + timedelta(seconds=settings.AUTHSOCKET_REFRESH_TTL),
        user_agent=user_agent[:256],
    )
    return _issue(session, access_ttl)


def _issue(session: AuthSession, access_ttl: int | None = None) -> IssuedTokens:
    refresh = new_credential()
    RefreshToken.objects.create(token_hash=credential_hash(refresh), session=session)
    now = int(time.time())
    ttl = settings.AUTHSOCKET_ACCESS_TTL if access_ttl is None else access_ttl
    # Never past the session's end: a socket opened with the token stays open
    # until its `exp`, and nothing asks about the session before then.
    ttl = min(ttl, int(session.expires_at.timestamp()) - now)
    access, exp = encode_access(
        user_id=session.user_id, sid=session.sid, now=now, ttl=ttl
    )
    return IssuedTokens(access, exp, refresh, session, ttl)


def session_refresh(*, refresh_token: str) -> IssuedTokens:
    """Rotate a refresh token: the old one dies, a new pair is issued.

    The rotation is one conditional UPDATE, so of two concurrent refreshes with
    the same token exactly one wins. A loser inside the grace window is told
    `token_rotated` (two tabs raced); an old token used again means it was
    stolen, so the whole session is revoked (`token_reused`).
    """
    now = timezone.now()
    if len(refresh_token) > MAX_CREDENTIAL_LENGTH:  # e.g. an access JWT
        raise InvalidRefreshToken()
    record = (
        RefreshToken.objects.select_related("session__user")
        .filter(token_hash=credential_hash(refresh_token))
        .first()
    )
    if record is None:
        raise InvalidRefreshToken()
    session = record.session
    _check_session_usable(session, now)
    rotated = RefreshToken.objects.filter(pk=record.pk, rotated_at__isnull=True).update(
        rotated_at=now
    )
    if not rotated:
        _refuse_rotated(record, session, now)
    with transaction.atomic():
        _session_touch(session, now)
        return _issue(session)


def _session_touch(session: AuthSession, now) -> None:
    """Stamp the use, keeping the session's row locked until the commit.

    Conditional on the session being unrevoked: a revocation that committed
    while this waited for the row (PostgreSQL re-checks the condition on the
    newest row) refuses the refresh, instead of issuing a pair for a session
    that is gone; one that comes later waits for this commit and revokes the
    new pair with the rest. The user is read again for the same reason.
    """
    if not AuthSession.objects.filter(pk=session.pk, revoked_at__isnull=True).update(
        last_used_at=now
    ):
        # Deleted (with its user) since it was read: the token names nothing.
        if not AuthSession.objects.filter(pk=session.pk).exists():
            raise InvalidRefreshToken()
        raise SessionRevoked()
    if not User.objects.filter(pk=session.user_id, is_active=True).exists():
        raise SessionRevoked()
    session.last_used_at = now


def _check_session_usable(session: AuthSession, now) -> None:
    if session.revoked_at is not None or not session.user.is_active:
        raise SessionRevoked()
    if session.expires_at <= now:
        raise SessionExpired()


def _refuse_rotated(record: RefreshToken, session: AuthSession, now) -> None:
    rotated_at = (
        RefreshToken.objects.filter(pk=record.pk)
        .values_list("rotated_at", flat=True)
        .first()
    )
    if rotated_at is None:  # deleted with its session since it was read
        raise InvalidRefreshToken()
    grace = timedelta(seconds=settings.AUTHSOCKET_REFRESH_GRACE)
    if now - rotated_at < grace:
        raise TokenRotated()
    session_revoke(session=session, reason="token_reused")
    raise TokenReused()


def session_for_refresh_token(refresh_token: str) -> AuthSession | None:
    """The session a refresh token (current or rotated) belongs to."""
    record = (
        RefreshToken.objects.select_related("session")
        .filter(token_hash=credential_hash(refresh_token))
        .first()
    )
    return record.session if record else None


def session_logout(*, session: AuthSession) -> None:
    session_revoke(session=session, reason="logout")


def session_logout_others(*, session: AuthSession) -> None:
    user_sessions_revoke(
        user_id=session.user_id, reason="logout_others", keep_sid=session.sid
    )


def session_logout_all(*, user: User) -> None:
    user_sessions_revoke(user_id=user.pk, reason="logout_all")


def session_delete(*, user: User, sid: str) -> bool:
    """Revoke one of the user's own sessions; False if no such live session.

    A sid holding NUL was never issued, and PostgreSQL refuses it in a query
    (a DataError: 500), so it is not looked up.
    """
    if "\x00" in sid:
        return False
    sessions = AuthSession.objects.live().filter(user=user, sid=sid)
    return bool(sessions_revoke(sessions=sessions, reason="deleted"))


def password_change(
    *, session: AuthSession, old_password: str, new_password: str
) -> None:
    """Change the session user's password; every other session is revoked.

    A wrong old password counts against the calling session, a right one
    resets the count: `PASSWORD_GUESS_LIMIT` wrong in a row revoke the session.
    The hash is stored with an UPDATE, which fires no model signal: the
    receivers of accounts.receivers revoke ALL sessions on any other password
    save (admin, `changepassword`, reset), and this path revokes itself.
    """
    refused = None
    with transaction.atomic():
        user = _caller_hold(session)
        right = user.check_password(old_password)
        if right:
            AuthSession.objects.filter(
                pk=session.pk, wrong_password_attempts__gt=0
            ).update(wrong_password_attempts=0)
            refused = _password_store(session, user, new_password)
    if not right:
        _password_guess_record(session=session)
        raise WrongPassword()
    if refused is not None:
        raise refused
    password_validation.password_changed(new_password, user)  # as save() would


def _caller_hold(session: AuthSession) -> User:
    """The caller's user, its row locked, if the calling session still lives.

    Two changes at once (two sessions of one user) take turns here: the
    second sees the hash the first stored and that its own session was
    revoked by it, so it cannot set its password after losing its session.
    The user's sessions are locked next, all at once, in the lock order of
    accounts.revocation: the change writes the caller's and revokes the
    others, and a deletion or a logout-all must not hold some of them.
    """
    user = users_lock(User.objects.filter(pk=session.user_id)).first()
    if user is None or not user.is_active:
        raise SessionRevoked()
    user_sessions_lock(user_id=user.pk)
    if not AuthSession.objects.live().filter(pk=session.pk).exists():
        raise SessionRevoked()
    return user


def _password_store(
    session: AuthSession, user: User, new_password: str
) -> DjangoValidationError | None:
    """Store the new hash and revoke the other sessions; or the validators'
    refusal, returned so the reset of the count above still commits."""
    try:
        password_validation.validate_password(new_password, user)
    except DjangoValidationError as exc:
        return exc
    user.password = make_password(new_password)
    User.objects.filter(pk=user.pk).update(password=user.password)
    user_sessions_revoke(
        user_id=user.pk, reason="password_changed", keep_sid=session.sid
    )
    return None


def _password_guess_record(*, session: AuthSession) -> None:
    """One more wrong old password; at the limit the session is revoked."""
    sessions = AuthSession.objects.filter(pk=session.pk)
    sessions.update(wrong_password_attempts=F("wrong_password_attempts") + 1)
    attempts = sessions.values_list("wrong_password_attempts", flat=True).first()
    if attempts is not None and attempts >= PASSWORD_GUESS_LIMIT:
        session_revoke(session=session, reason=PASSWORD_GUESSING_REASON)


def ticket_issue(*, session: AuthSession, access_expires_at: int) -> tuple[str, int]:
    """A one-time WebSocket ticket for this session; returns `(ticket, ttl)`.

    The session was live when the request was authenticated, but a logout or
    a deletion may commit before the ticket is stored. Its row is locked
    (step 2 of the lock order) and read again first, so the answer is
    `SessionRevoked` instead of a ticket for a gone session, or a foreign
    key error (a 500) when the row was deleted.
    """
    ticket = new_credential()
    ttl = settings.AUTHSOCKET_TICKET_TTL
    with transaction.atomic():
        if not _session_hold(session):
            raise SessionRevoked()
        WebSocketTicket.objects.create(
            ticket_hash=credential_hash(ticket),
            session=session,
            access_expires_at=access_expires_at,
            expires_at=timezone.now() + timedelta(seconds=ttl),
        )
    return ticket, ttl


def _session_hold(session: AuthSession) -> bool:
    """Lock the session's row if it still lives: what may be attached to it."""
    held = (
        AuthSession.objects.live().filter(pk=session.pk).select_for_update(no_key=True)
    )
    return bool(held.values_list("pk", flat=True))


def ticket_consume(*, ticket: str) -> WebSocketTicket:
    """Use a ticket up. One conditional UPDATE: of concurrent uses, one wins."""
    now = timezone.now()
    ticket_hash = credential_hash(ticket)
    used = WebSocketTicket.objects.filter(
        ticket_hash=ticket_hash, used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if not used:
        raise InvalidTicket()
    ticket = (
        WebSocketTicket.objects.select_related("session__user")
        .filter(ticket_hash=ticket_hash)
        .first()
    )
    if ticket is None:  # deleted with its session since the update
        raise InvalidTicket()
    return ticket
