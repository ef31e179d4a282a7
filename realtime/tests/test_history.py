"""Stored history: retention per kind, and history following its room or user."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from realtime.history import history_prune
from realtime.models import Message, Room, StreamCounter
from realtime.publish import (
    publish_to_room,
    publish_to_user,
    stream_publish,
    stream_publish_to,
)
from realtime.services import membership_create
from realtime.streams import room_stream
from realtime.tests.conftest import TIMEOUT, db, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def kept(name: str) -> list[int]:
    return list(Message.objects.filter(stream=name).values_list("seq", flat=True))


def age(name: str, seq: int, days: float) -> None:
    Message.objects.filter(stream=name, seq=seq).update(
        created_at=timezone.now() - timedelta(days=days)
    )


def test_a_kind_keeps_its_newest_messages_per_stream(test_kinds):
    for _ in range(5):
        stream_publish(name="note:a", data=1)
    stream_publish(name="note:b", data=1)
    assert history_prune()["note"] == 2
    assert kept("note:a") == [3, 4, 5] and kept("note:b") == [1]
    assert StreamCounter.objects.get(pk="note:a").last_message_id == 5
    stream_publish(name="note:a", data=1)
    assert kept("note:a") == [3, 4, 5, 6]  # ids go on from the counter


def test_a_kind_drops_what_is_older_than_its_age(test_kinds):
    for _ in range(2):
        stream_publish(name="note:a", data=1)
    age("note:a", 1, days=1)  # NoteKind keeps an hour
    assert history_prune()["note"] == 1
    assert kept("note:a") == [2]


def test_the_built_ins_take_the_settings(settings, rooms, alice):
    settings.AUTHSOCKET_HISTORY_MAX_PER_STREAM = 2
    settings.AUTHSOCKET_HISTORY_MAX_AGE = 86400
    for n in range(3):
        publish_to_room(room=rooms["lobby"], sender=alice, data=n)
        publish_to_user(user=alice, data=n)
    age(f"user:{alice.pk}", 2, days=2)
    pruned = history_prune()
    assert (pruned["room"], pruned["user"]) == (1, 2)
    assert kept("room:lobby") == [2, 3] and kept(f"user:{alice.pk}") == [3]


def test_idempotency_rows_of_a_kind_without_history_outlive_a_day_only(test_kinds):
    stream_publish(name="tick:a", data=1)  # not stored at all
    Message.objects.create(stream="tick:a", seq=7, data="kept for a repeat")
    assert history_prune()["tick"] == 0
    Message.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert history_prune()["tick"] == 1


@pytest.mark.asyncio
async def test_since_older_than_what_is_kept_is_a_reset_after_pruning(
    connect, alice, test_kinds
):

    test_kinds["note"].readers.add(("a", alice.pk))
    for n in range(1, 6):
        await db(stream_publish, name="note:a", data=n)
    await db(history_prune)
    socket = await connect(alice)
    answer = await subscribe(socket, "note:a", since=1)
    assert answer["reset"] is True and answer["last_id"] == 5
    replayed = [await socket.receive_json_from(timeout=TIMEOUT) for _ in range(3)]
    assert [m["id"] for m in replayed] == [3, 4, 5]
    # Resuming from within what is kept is no reset.
    other = await connect(alice)
    again = await subscribe(other, "note:a", since=2)
    assert "reset" not in again
    replayed = [await other.receive_json_from(timeout=TIMEOUT) for _ in range(3)]
    assert [m["id"] for m in replayed] == [3, 4, 5]


def test_prune_history_command_reports_each_kind(test_kinds):
    for _ in range(4):
        stream_publish(name="note:a", data=1)
    out = StringIO()
    call_command("prune_history", stdout=out)
    assert "note: 1 message(s) pruned" in out.getvalue()
    assert "room: 0 message(s) pruned" in out.getvalue()


def test_deleting_a_room_deletes_its_history(rooms, alice):
    publish_to_room(room=rooms["team"], sender=alice, data=1)
    publish_to_room(room=rooms["lobby"], sender=alice, data=1)
    rooms["team"].delete()
    assert not Message.objects.filter(stream="room:team").exists()
    assert not StreamCounter.objects.filter(pk="room:team").exists()
    assert kept("room:lobby") == [1]
    # A new room of that name starts from 1.
    room = Room.objects.create(slug="team")
    membership_create(user=alice, room=room)
    assert publish_to_room(room=room, sender=alice, data=1).seq == 1


def test_a_new_room_never_shows_what_an_earlier_room_of_its_slug_left(alice):
    """A publish that passed its check before its room was deleted and
    committed after leaves a message under the name: not the new room's."""
    stream_publish_to(stream=room_stream("reborn"), data="private, old", sender=alice)
    room = Room.objects.create(slug="reborn")
    assert kept("room:reborn") == []
    membership_create(user=alice, room=room)
    assert publish_to_room(room=room, sender=alice, data="new").seq == 1


def test_renaming_a_room_carries_its_history_and_ids(rooms, alice):
    for n in range(2):
        publish_to_room(room=rooms["team"], sender=alice, data=n)
    room = rooms["team"]
    room.slug = "crew"
    room.save()
    assert kept("room:crew") == [1, 2] and kept("room:team") == []
    assert publish_to_room(room=room, sender=alice, data=2).seq == 3


def test_deleting_a_user_deletes_his_stream(alice, bob):
    publish_to_user(user=alice, data=1)
    publish_to_user(user=bob, data=1)
    name = f"user:{alice.pk}"
    alice.delete()
    assert kept(name) == [] and not StreamCounter.objects.filter(pk=name).exists()
    assert kept(f"user:{bob.pk}") == [1]
