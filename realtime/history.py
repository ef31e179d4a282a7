"""Stored history of streams: deleted with its owner, renamed, pruned.

Retention (docs/protocol.md §1) is per kind: messages older than
`History.age()` seconds, or beyond the newest `History.per_stream()` of their
stream, are deleted by `history_prune` (`manage.py prune_history`, run by
cron or a systemd timer). Counters are never pruned: ids go on from where
they were, and a `since` older than what is kept gets `reset`
(realtime.replay). Deletes go in batches, so a large prune holds no long
lock and loads no table into memory.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from realtime.kind_registry import StreamKind, registry
from realtime.models import Message, StreamCounter
from realtime.server_api import IDEMPOTENCY_WINDOW

BATCH = 1000


def stream_history_delete(*, name: str) -> None:
    """The stream is gone (its room or user deleted): its messages and counter too.

    The counter first: deleting its row waits for a publish in flight (which
    holds the row until it commits), so the message delete that follows sees
    that message too. Messages first would leave it behind, and a room made
    again with the slug would fail every publish once its ids reached it.
    Run inside the owner's deletion (a transaction), so a publish after this
    waits for the whole deletion.
    """
    StreamCounter.objects.filter(pk=name).delete()
    _delete_in_batches(Message.objects.filter(stream=name))


def stream_history_rename(*, old: str, new: str) -> None:
    """Carry messages and counter to the new name (a renamed room keeps its ids).

    The old counter is locked first, as a publish locks it: a publish in
    flight commits before the messages move (its message moves with them and
    the counter read is its id), and one after waits until the rename commits.
    """
    with transaction.atomic():
        counter = StreamCounter.objects.select_for_update().filter(pk=old).first()
        stream_history_delete(name=new)  # leftovers of a name nothing owns now
        Message.objects.filter(stream=old).update(stream=new)
        if counter is not None:
            StreamCounter.objects.create(
                stream=new, last_message_id=counter.last_message_id
            )
            counter.delete()


def history_prune(*, now: datetime | None = None) -> dict[str, int]:
    """Apply every kind's retention; messages deleted, by kind name."""
    now = now or timezone.now()
    return {kind.name: _kind_prune(kind, now) for kind in registry}


def _kind_prune(kind: StreamKind, now: datetime) -> int:
    messages = Message.objects.filter(stream__startswith=f"{kind.name}:")
    if kind.history is None:
        # Stored only to answer a repeated server publish (Idempotency-Key).
        return _delete_in_batches(
            messages.filter(created_at__lt=now - IDEMPOTENCY_WINDOW)
        )
    too_old = messages.filter(
        created_at__lt=now - timedelta(seconds=kind.history.age())
    )
    keep = kind.history.per_stream()
    beyond = messages.filter(
        Exists(
            StreamCounter.objects.filter(
                stream=OuterRef("stream"), last_message_id__gte=OuterRef("seq") + keep
            )
        )
    )
    return _delete_in_batches(too_old) + _delete_in_batches(beyond)


def _delete_in_batches(messages: QuerySet) -> int:
    deleted = 0
    while True:
        batch = list(messages.values_list("pk", flat=True)[:BATCH])
        if not batch:
            return deleted
        Message.objects.filter(pk__in=batch).delete()
        deleted += len(batch)
