"""What the server API does with streams: find the one a backend names, publish.

A backend is not a user: it names streams in full (`room:<slug>`,
`user:<id>`, `<kind>:<key>`; no `user` alias), no read or publish right of a
user applies to it, and a stream that does not exist (`StreamKind.exists`),
or a name no kind owns, is `StreamNotFound` (404). A kind whose publishers
are `Publishers.NOBODY` is `publishable=False`, which `server_publish` turns
into `PublishForbidden` (403).
"""

import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ServiceKey
from realtime.kind_registry import Publishers
from realtime.models import IdempotentPublish, Message
from realtime.publish import stream_publish_to
from realtime.streams import Stream, stream_parse

IDEMPOTENCY_WINDOW = timedelta(hours=24)
# Expired idempotency rows are deleted at most this often per process: one
# cheap indexed DELETE, instead of a scheduled job to remember.
PRUNE_INTERVAL = 60.0


class StreamNotFound(Exception):
    """No such stream, or a name no kind owns."""


class PublishForbidden(Exception):
    """The stream's kind takes no publishes from the server API."""


@dataclass(frozen=True, slots=True)
class ServerStream:
    """A stream the server API found."""

    stream: Stream
    publishable: bool = True


def server_stream_resolve(*, name) -> ServerStream:
    """The existing stream `name` names in full; StreamNotFound otherwise."""
    stream = stream_parse(name, user_id=None)
    if stream is None or not stream.kind.exists(stream.key):
        raise StreamNotFound(name)
    return ServerStream(
        stream, publishable=stream.kind.publishers is not Publishers.NOBODY
    )


def server_publish(
    *, service_key: ServiceKey, name, data, idempotency_key: str | None = None
) -> tuple[Message, bool]:
    """Store and deliver with sender null; `(message, created)`.

    With `idempotency_key`, a key this service key used in the last 24 hours
    answers the message stored then (`created` False) and publishes nothing.
    Two concurrent first uses store one message: the unique constraint lets
    one transaction commit, the other rolls back, message and fan-out alike,
    and answers the winner's.
    """
    target = server_stream_resolve(name=name)
    if not target.publishable:
        raise PublishForbidden(name)
    if idempotency_key is None:
        return stream_publish_to(stream=target.stream, data=data), True
    earlier = _earlier_publish(service_key, idempotency_key)
    if earlier is not None:
        return earlier, False
    try:
        with transaction.atomic():
            _expired(service_key, idempotency_key).delete()
            # Kept even without history: the repeat is answered with it.
            message = stream_publish_to(stream=target.stream, data=data, keep=True)
            IdempotentPublish.objects.create(
                service_key=service_key, key=idempotency_key, message=message
            )
    except IntegrityError:
        earlier = _earlier_publish(service_key, idempotency_key)
        if earlier is None:
            raise
        return earlier, False
    idempotency_prune_now_and_then()
    return message, True


def _earlier_publish(service_key: ServiceKey, key: str) -> Message | None:
    cutoff = timezone.now() - IDEMPOTENCY_WINDOW
    entry = (
        IdempotentPublish.objects.filter(
            service_key=service_key, key=key, created_at__gt=cutoff
        )
        .select_related("message__sender")
        .first()
    )
    return entry.message if entry else None


def _expired(service_key: ServiceKey, key: str):
    cutoff = timezone.now() - IDEMPOTENCY_WINDOW
    return IdempotentPublish.objects.filter(
        service_key=service_key, key=key, created_at__lte=cutoff
    )


_last_prune = float("-inf")


def idempotency_prune_now_and_then() -> int:
    """Delete idempotency rows older than the window, at most once a minute."""
    global _last_prune
    now = time.monotonic()
    if now - _last_prune < PRUNE_INTERVAL:
        return 0
    _last_prune = now
    return idempotency_prune()


def idempotency_prune() -> int:
    """Delete every idempotency row older than the window; how many."""
    cutoff = timezone.now() - IDEMPOTENCY_WINDOW
    deleted, _ = IdempotentPublish.objects.filter(created_at__lte=cutoff).delete()
    return deleted
