"""Publishing: numbering in commit order, storage first, fan-out best effort."""

import asyncio
import json
import subprocess
import threading
import time

import pytest
from channels.layers import get_channel_layer
from django.db import connection

from realtime.messages import InvalidData
from realtime.models import Message
from realtime.publish import publish_to_room, publish_to_user
from realtime.selectors import messages_after, stream_last_id
from realtime.streams import room_stream
from realtime.tests.messages import room_message_store, user_message_store
from realtime.tests.sockets import db
from tests.servers import PROJECT, PYTHON, manage, server_env
from tests.services import postgres_database

WRITERS, PER_WRITER = 4, 25
DEADLINE = 60.0


def poll_after(stream, total: int, seen: list[int]) -> None:
    """A reader that asks for `after=<last id it saw>` until it has `total`."""
    last, deadline = 0, time.monotonic() + DEADLINE
    try:
        while len(seen) < total and time.monotonic() < deadline:
            for message in messages_after(stream=stream, after=last, limit=50):
                seen.append(message.seq)
                last = message.seq
            time.sleep(0.001)  # another thread's commits cannot be awaited
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_concurrent_threads_number_one_to_n_and_a_since_reader_misses_none(
    alice, bob, rooms
):
    room, total = rooms["team"], WRITERS * PER_WRITER

    def write(user) -> None:
        try:
            for n in range(PER_WRITER):
                room_message_store(room=room, sender=user, data=n)
        finally:
            connection.close()

    seen: list[int] = []
    threads = [
        threading.Thread(target=poll_after, args=(room_stream("team"), total, seen))
    ]
    threads += [threading.Thread(target=write, args=(u,)) for u in [alice, bob] * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    numbers = sorted(
        Message.objects.filter(stream="room:team").values_list("seq", flat=True)
    )
    assert numbers == list(range(1, total + 1))
    assert seen == list(range(1, total + 1))
    assert stream_last_id(stream=room_stream("team")) == total


WRITER_SCRIPT = """
from accounts.models import User
from realtime.models import Room
from realtime.tests.messages import room_message_store
room, user = Room.objects.get(slug="team"), User.objects.get(username="alice")
for n in range({per}):
    room_message_store(room=room, sender=user, data=n)
"""

READER_SCRIPT = """
import json, time
from realtime.selectors import messages_after, stream_last_id
from realtime.streams import room_stream
from realtime.tests.sockets import db
seen, last, deadline = [], 0, time.monotonic() + {deadline}
while len(seen) < {total} and time.monotonic() < deadline:
    for m in messages_after(stream=room_stream("team"), after=last, limit=50):
        seen.append(m.seq)
        last = m.seq
print(json.dumps(seen))
"""


@pytest.mark.services
@pytest.mark.slow
def test_concurrent_processes_on_postgresql_number_in_commit_order():
    """Several processes on PostgreSQL: ids 1…N, and polling `after` skips none."""
    total = WRITERS * PER_WRITER
    with postgres_database() as url:
        env = server_env(url)
        manage(env, "migrate", "--noinput")
        manage(env, "demo_data")

        def start(script: str) -> subprocess.Popen:
            return subprocess.Popen(
                [PYTHON, "manage.py", "shell", "-c", script],
                cwd=PROJECT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )

        reader = start(READER_SCRIPT.format(total=total, deadline=DEADLINE))
        writers = [start(WRITER_SCRIPT.format(per=PER_WRITER)) for _ in range(WRITERS)]
        for process in writers:
            _, err = process.communicate(timeout=DEADLINE)
            assert process.returncode == 0, err
        out, err = reader.communicate(timeout=DEADLINE)
        assert reader.returncode == 0, err
        seen = json.loads(out.strip().splitlines()[-1])
        assert seen == list(range(1, total + 1))


@pytest.mark.django_db(transaction=True)
def test_user_streams_are_numbered_separately(alice, bob, rooms):
    publish_to_room(room=rooms["team"], sender=alice, data="room")
    assert publish_to_user(user=alice, data="a1").seq == 1
    assert publish_to_user(user=alice, data="a2").seq == 2
    assert publish_to_user(user=bob, data="b1").seq == 1


@pytest.mark.django_db(transaction=True)
def test_message_is_stored_when_the_channel_layer_is_down(
    alice, rooms, monkeypatch, caplog
):
    class BrokenLayer:
        async def group_send(self, group, message):
            raise ConnectionError("layer down")

    monkeypatch.setattr("realtime.broadcast.get_channel_layer", lambda: BrokenLayer())
    message = publish_to_room(room=rooms["team"], sender=alice, data="kept")
    assert Message.objects.get(pk=message.pk).data == "kept"
    assert "live delivery failed" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_fanout_waits_for_the_outer_transaction_to_commit(alice, rooms, monkeypatch):
    from django.db import transaction

    sent = []
    monkeypatch.setattr("realtime.publish.fanout", sent.append)
    with transaction.atomic():
        publish_to_room(room=rooms["team"], sender=alice, data=1)
        assert sent == []
    assert [p.message.seq for p in sent] == [1]


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "data",
    [
        float("nan"),
        "\ud800",
        "a\x00b",
        {"k": ["\x00"]},
        "x" * 70000,
        # No frame may carry these (strict JSON), whatever interface stored them.
        [float("inf")],
        {"n": 10**400},
        nested(64),
    ],
    ids=["nan", "surrogate", "nul", "nested-nul", "big", "inf", "huge-int", "64-deep"],
)
def test_data_storage_cannot_hold_is_refused_before_numbering(alice, rooms, data):
    with pytest.raises(InvalidData):
        room_message_store(room=rooms["team"], sender=alice, data=data)
    assert stream_last_id(stream=room_stream("team")) == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("text", ["C:\\u0000dir", "\\\\u0000", {"\\u0000": 1}])
def test_text_that_only_spells_a_nul_escape_is_stored(alice, rooms, text):
    """A backslash then `u0000` is six characters, no NUL: any JSON is data."""
    published = room_message_store(room=rooms["team"], sender=alice, data=text)
    assert Message.objects.get(pk=published.message.pk).data == text


@pytest.mark.django_db(transaction=True)
def test_data_63_deep_is_stored_on_the_user_stream(alice):
    message = publish_to_user(user=alice, data=nested(63))
    assert message.data == nested(63)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_async_fanout_delivers_what_was_stored(alice, rooms):
    """The consumer's path: store on the sync thread, fan out on the loop."""
    from realtime.publish import afanout
    from realtime.tests.conftest import TIMEOUT

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("room.team", channel)
    await layer.group_add(f"user.{alice.pk}", channel)
    stored = [
        await db(room_message_store, room=rooms["team"], sender=alice, data="r"),
        await db(user_message_store, user=alice, data="u"),
    ]
    for published in stored:
        await afanout(published)
    assert [published.message.seq for published in stored] == [1, 1]
    first = await asyncio.wait_for(layer.receive(channel), TIMEOUT)
    second = await asyncio.wait_for(layer.receive(channel), TIMEOUT)
    assert [(e["stream"], json.loads(e["text"])["data"]) for e in (first, second)] == [
        ("room:team", "r"),
        ("user", "u"),
    ]
