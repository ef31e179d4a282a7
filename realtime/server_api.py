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
from django.db.models import Q
from django.utils import timezone

from accounts.errors import InvalidServiceKey
from accounts.models import ServiceKey
from realtime.kind_registry import Publishers
from realtime.messages import message_frame
from realtime.models import IdempotentPublish
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
) -> tuple[dict, bool]:
    """Store and deliver with sender null; `(the message's frame, created)`.

    With `idempotency_key`, a key this service key used in the last 24 hours
    answers what it answered then (`created` False), whatever `name` and
    `data` are now, and publishes nothing. Two concurrent first uses store
    one message: the unique constraint lets one transaction commit, the
    other rolls back, message and fan-out alike, and answers the winner's.
    """
    if idempotency_key is not None:
        earlier = server_publish_earlier(service_key=service_key, key=idempotency_key)
        if earlier is not None:
            return earlier, False
    target = server_stream_resolve(name=name)
    if not target.publishable:
        raise PublishForbidden(name)
    if idempotency_key is None:
        message = stream_publish_to(stream=target.stream, data=data)
        return message_frame(message, full_name=True), True
    try:
        with transaction.atomic():
            _expired(service_key, idempotency_key).delete()
            # Stored even without history (pruned after a day); a repeat
            # gets `answer`, which outlives any pruning of the message.
            message = stream_publish_to(stream=target.stream, data=data, keep=True)
            answer = message_frame(message, full_name=True)
            IdempotentPublish.objects.create(
                service_key=service_key,
                key=idempotency_key,
                message=message,
                answer=answer,
            )
    except IntegrityError:
        earlier = server_publish_earlier(service_key=service_key, key=idempotency_key)
        if earlier is not None:
            return earlier, False
        _service_key_check(service_key)
        raise
    idempotency_prune_now_and_then()
    return answer, True


def _service_key_check(service_key: ServiceKey) -> None:
    """InvalidServiceKey if the key was deleted since it authenticated.

    Keys are revoked, not deleted (the admin cannot delete them), but the
    shell can: the idempotency row then refers to nothing, and PostgreSQL
    refuses it at commit. The caller is answered as for an unknown key.
    """
    if not ServiceKey.objects.filter(pk=service_key.pk).exists():
        raise InvalidServiceKey("The service key was deleted.")


def server_publish_earlier(*, service_key: ServiceKey, key: str) -> dict | None:
    """What a publish under `key` answered in the last 24 hours, if one did."""
    cutoff = timezone.now() - IDEMPOTENCY_WINDOW
    entry = (
        IdempotentPublish.objects.filter(
            service_key=service_key, key=key, created_at__gt=cutoff
        )
        .select_related("message__sender")
        .first()
    )
    if entry is None:
        return None
    if entry.answer is None and entry.message is not None:
        return message_frame(entry.message, full_name=True)  # stored before answers
    return entry.answer


def _expired(service_key: ServiceKey, key: str):
    """The key's row if it answers nothing: older than the window, or stored
    before answers were (migration 0005) with its message pruned since. Left
    in place, it would hold the key's unique slot and fail the insert."""
    cutoff = timezone.now() - IDEMPOTENCY_WINDOW
    return IdempotentPublish.objects.filter(
        Q(created_at__lte=cutoff) | Q(answer__isnull=True, message__isnull=True),
        service_key=service_key,
        key=key,
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
