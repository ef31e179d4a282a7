"""Users, login sessions, refresh tokens and WebSocket tickets.

Only hashes of refresh tokens and tickets are stored: a database leak must not
hand out live credentials. Every refresh token ever issued is kept (with the
time it was rotated) so that reuse of an old one is recognized as theft.
"""

from django.contrib.auth.hashers import acheck_password, check_password, make_password
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


class User(AbstractUser):
    """The project's user: custom from day one, so fields can be added later."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    # Django saves an upgraded hash (same password, a newer hasher or more
    # iterations) with save(), which accounts.receivers would take for a password
    # change and revoke every session at the next login after a Django upgrade.
    # Same check, but the new hash is written with an UPDATE: no model signal.
    def check_password(self, raw_password) -> bool:
        return check_password(raw_password, self.password, self._store_upgraded_hash)

    async def acheck_password(self, raw_password) -> bool:
        return await acheck_password(
            raw_password, self.password, self._astore_upgraded_hash
        )

    def _store_upgraded_hash(self, raw_password: str) -> None:
        self.password = make_password(raw_password)
        User.objects.filter(pk=self.pk).update(password=self.password)

    async def _astore_upgraded_hash(self, raw_password: str) -> None:
        self.password = make_password(raw_password)
        await User.objects.filter(pk=self.pk).aupdate(password=self.password)


class AuthSessionQuerySet(models.QuerySet):
    def live(self) -> "AuthSessionQuerySet":
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class AuthSession(models.Model):
    """One login: the thing that logout, revocation and refresh act upon.

    `expires_at` is absolute from login; refreshing never extends it.
    """

    sid = models.CharField(max_length=64, unique=True, editable=False)
    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, related_name="auth_sessions"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    # Indexed first in `authsession_recent_use` (Meta), which serves every
    # filter on it alone too.
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=32, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    # In the database, not the throttle cache: every process sees the same
    # count, a Redis outage or eviction cannot reset it, and it lives exactly
    # as long as the session (the tenth guess comes minutes later, throttled).
    wrong_password_attempts = models.PositiveSmallIntegerField(
        default=0,
        editable=False,
        help_text="wrong old passwords in a row on POST /api/auth/password",
    )

    objects = AuthSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        # Not "session": the admin would list it next to Django's own sessions.
        verbose_name = "login session"
        verbose_name_plural = "login sessions"
        indexes = [
            # Every process's session guard asks twice a second for the live
            # sessions used since its last look (`sessions_used_since`): a
            # range of this index, not a scan of every unrevoked session.
            models.Index(
                fields=["revoked_at", "last_used_at"], name="authsession_recent_use"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.sid[:8]}…"


class RefreshToken(models.Model):
    """A refresh token ever issued, by hash; `rotated_at` set once it was used."""

    token_hash = models.CharField(max_length=64, unique=True)
    session = models.ForeignKey(
        AuthSession, on_delete=models.CASCADE, related_name="refresh_tokens"
    )
    created_at = models.DateTimeField(default=timezone.now)
    rotated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"refresh token of {self.session}"


class SessionRevocation(models.Model):
    """Append-only log of revocations that every server process polls.

    It has no foreign key on purpose: when a user is deleted, the sessions go
    with it, but the log rows stay so that other processes still learn to close
    those sockets and forget cached sessions.
    """

    sid = models.CharField(max_length=64, db_index=True)
    user_id = models.BigIntegerField()
    revoked_at = models.DateTimeField(default=timezone.now, db_index=True)
    reason = models.CharField(max_length=32)

    def __str__(self) -> str:
        return f"{self.sid[:8]}… revoked ({self.reason})"


class WebSocketTicket(models.Model):
    """A one-time credential for the WebSocket URL, bound to a session."""

    ticket_hash = models.CharField(max_length=64, unique=True)
    session = models.ForeignKey(
        AuthSession, on_delete=models.CASCADE, related_name="tickets"
    )
    access_expires_at = models.BigIntegerField(
        help_text="exp of the access token that asked for it (UNIX seconds)"
    )
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"ticket of {self.session}"


def service_key_name_validate(name: str) -> None:
    """A key's name is one line of `manage.py service_key list`, read by people.

    A control character (a newline, a tab, a terminal escape) would forge or
    hide lines there, and padding makes two names look alike.
    """
    if not name.isprintable():
        raise ValidationError(
            "Only printable characters (no newlines, tabs or other control "
            "characters).",
            code="not_printable",
        )
    if name != name.strip():
        raise ValidationError(
            "No leading or trailing spaces.", code="surrounding_whitespace"
        )


class ServiceKeyQuerySet(models.QuerySet):
    def live(self) -> "ServiceKeyQuerySet":
        return self.filter(revoked_at__isnull=True)


class ServiceKey(models.Model):
    """A backend's credential for the server API, stored as a SHA-256 digest.

    The key itself is shown once, when created; `prefix` (its first characters)
    is what people see afterwards to tell keys apart.
    """

    name = models.CharField(max_length=64, validators=[service_key_name_validate])
    prefix = models.CharField(max_length=16, editable=False)
    # Unique, hence indexed: a request finds its key with one index lookup.
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Written at most once a minute per key (accounts.service_keys), not per request.
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ServiceKeyQuerySet.as_manager()

    class Meta:
        ordering = ["name", "-created_at"]
        constraints = [
            # A name is taken by one live key at a time; revoked keys keep
            # theirs, so a key can be replaced by a new one of the same name.
            models.UniqueConstraint(
                fields=["name"],
                condition=models.Q(revoked_at__isnull=True),
                name="service_key_live_name_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
