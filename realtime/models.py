"""Rooms, memberships and stored messages of streams (docs/protocol.md §2, §4.2).

A message belongs to one stream: a room, or a user (that user's private
`user` stream). Its `seq` is the wire `id`: numbered 1, 2, 3 … per stream
from a counter row (`Room.last_message_id`, `UserStream.last_message_id`)
that is updated in the inserting transaction, so the row lock orders numbers
by commit (database ids are taken before commit and would not be).
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from realtime.protocol import (
    ROOM_SLUG_PATTERN,
    ROOM_STREAM_PREFIX,
    USER_STREAM_PREFIX,
)

slug_validator = RegexValidator(
    rf"\A{ROOM_SLUG_PATTERN}\Z",
    "Lowercase letters, digits, '-' and '_', starting with a letter or digit.",
)


class Room(models.Model):
    slug = models.CharField(max_length=64, unique=True, validators=[slug_validator])
    title = models.CharField(max_length=200, blank=True)
    public = models.BooleanField(
        default=False, help_text="Anyone may read; only members may publish."
    )
    last_message_id = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member"
        OWNER = "owner"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "room"], name="membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.room}"


class UserStream(models.Model):
    """The message counter of one user's private stream (created on first use)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="stream",
    )
    last_message_id = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"user stream of {self.user}"


class Message(models.Model):
    """A stored message of exactly one stream: `room` or `recipient`."""

    room = models.ForeignKey(
        Room, null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="stream_messages",
    )
    seq = models.PositiveBigIntegerField(
        help_text="The wire `id`: 1, 2, 3 … per stream."
    )
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sent_messages",
    )
    # JSON null is stored as SQL NULL (Django's JSONField default): same value back.
    data = models.JSONField(null=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(room__isnull=False, recipient__isnull=True)
                | Q(room__isnull=True, recipient__isnull=False),
                name="message_one_stream",
            ),
            # Unique per stream; these also serve `seq > since ORDER BY seq`.
            models.UniqueConstraint(
                fields=["room", "seq"],
                condition=Q(room__isnull=False),
                name="message_room_seq_unique",
            ),
            models.UniqueConstraint(
                fields=["recipient", "seq"],
                condition=Q(recipient__isnull=False),
                name="message_recipient_seq_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stream_name} #{self.seq}"

    @property
    def stream_name(self) -> str:
        """`room:<slug>` or `user:<id>`, as a client names the stream."""
        if self.room_id:
            return f"{ROOM_STREAM_PREFIX}{self.room.slug}"
        return f"{USER_STREAM_PREFIX}{self.recipient_id}"


class IdempotentPublish(models.Model):
    """The message a server API publish stored under its `Idempotency-Key`.

    Unique per service key and key, so two concurrent identical requests
    store one message; rows older than a day answer nothing and are pruned
    (realtime.server_api).
    """

    service_key = models.ForeignKey(
        "accounts.ServiceKey", on_delete=models.CASCADE, related_name="+"
    )
    key = models.CharField(max_length=64)
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["service_key", "key"], name="idempotent_publish_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} → {self.message}"
