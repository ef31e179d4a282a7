"""Rooms, memberships and stored messages of streams (docs/protocol.md §2, §4.2).

A message belongs to one stream, named in full (`room:<slug>`, `user:<id>`,
any kind's `<kind>:<key>`). Its `seq` is the wire `id`: numbered 1, 2, 3 …
per stream from the stream's `StreamCounter` row, updated in the inserting
transaction, so the row lock orders numbers by commit (database ids are
taken before commit and would not be).
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from realtime.protocol import MAX_STREAM_NAME_LENGTH, ROOM_SLUG_PATTERN

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


class StreamCounter(models.Model):
    """The id of one stream's latest message (created on its first message).

    Kept even for kinds that store nothing, and when history is pruned:
    ids never go back, so `since` never skips a message.
    """

    stream = models.CharField(max_length=MAX_STREAM_NAME_LENGTH, primary_key=True)
    last_message_id = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.stream} at #{self.last_message_id}"


class Message(models.Model):
    """A stored message of one stream, named in full."""

    stream = models.CharField(max_length=MAX_STREAM_NAME_LENGTH)
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
    # Indexed for age-based pruning (realtime.retention).
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            # Unique per stream; also serves `seq > since ORDER BY seq`.
            models.UniqueConstraint(
                fields=["stream", "seq"], name="message_stream_seq_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stream} #{self.seq}"


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
    # What the first publish answered, answered again to a repeat: the message
    # itself may be pruned by its kind's retention within the day.
    answer = models.JSONField(null=True)
    message = models.ForeignKey(
        Message, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["service_key", "key"], name="idempotent_publish_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} → {self.message}"
