"""Numbering and history against a publish still in flight, on PostgreSQL.

Each test forces one interleaving with two database connections in two
processes: a publisher that has numbered and stored its message but not yet
committed (it waits on its stdin), and a second actor that must wait for it
(another publish, a room deletion, a room rename). The test sees the actor
blocked on a lock in `pg_stat_activity`, lets the publisher commit, and checks
what both left behind. No timing luck: the order is the one chosen here.
"""

import pytest

from tests.db_scripts import (
    Script,
    blocked_on_a_lock,
    migrated_database,
    scripts_started,
    stream_rows,
)
from tests.servers import alice_rooms

pytestmark = [pytest.mark.services]

HOLD = """
import sys
from django.db import transaction
from realtime.publish import stream_publish
with transaction.atomic():
    print(stream_publish(name={name!r}, data="held").seq, flush=True)
    sys.stdin.readline()  # committed when the test says so
print("committed", flush=True)
"""

PUBLISH = """
from realtime.publish import stream_publish
for _ in range({count}):
    print(stream_publish(name={name!r}, data="next").seq, flush=True)
"""

DELETE_ROOM = """
from realtime.models import Room
Room.objects.get(slug={slug!r}).delete()
print("deleted", flush=True)
"""

RENAME_ROOM = """
from realtime.models import Room
room = Room.objects.get(slug={old!r})
room.slug = {new!r}
room.save()
print("renamed", flush=True)
"""


@pytest.fixture(scope="module")
def database():
    """A migrated PostgreSQL database with the demo users: (env, dsn)."""
    with migrated_database(("demo_data",)) as env_and_dsn:
        yield env_and_dsn


@pytest.fixture
def scripts():
    with scripts_started() as start:
        yield start


def held_publish(start, env, stream: str) -> tuple[Script, int]:
    holder = start(env, HOLD.format(name=stream))
    return holder, int(holder.line())


def test_a_second_publisher_is_numbered_only_after_the_first_commits(database, scripts):
    """Transaction A has id 3 and has not committed: B cannot take 4 (and be
    delivered) before A commits, so no reader ever sees 4 without 3."""
    env, dsn = database
    (stream,) = alice_rooms(env, ["order"])
    first = scripts(env, PUBLISH.format(name=stream, count=2))
    first.finish()
    holder, held = held_publish(scripts, env, stream)
    assert held == 3
    second = scripts(env, PUBLISH.format(name=stream, count=1))
    blocked_on_a_lock(dsn)
    assert stream_rows(dsn, stream) == ([1, 2], 2)  # readers: nothing past the gap
    holder.release()
    assert holder.line() == "committed"
    assert second.line() == "4"
    holder.finish()
    second.finish()
    assert stream_rows(dsn, stream) == ([1, 2, 3, 4], 4)


def test_deleting_a_room_during_a_publish_leaves_none_of_its_messages(
    database, scripts
):
    """The deletion waits for the publish in flight and takes its message too:
    a room made again with that slug starts at 1 and is not stuck at a
    leftover id (a unique-constraint failure on every publish)."""
    env, dsn = database
    (stream,) = alice_rooms(env, ["doomed"])
    scripts(env, PUBLISH.format(name=stream, count=2)).finish()
    holder, held = held_publish(scripts, env, stream)
    assert held == 3
    deletion = scripts(env, DELETE_ROOM.format(slug="doomed"))
    blocked_on_a_lock(dsn)
    holder.release()
    assert deletion.line() == "deleted"
    holder.finish()
    deletion.finish()
    assert stream_rows(dsn, stream) == ([], None)
    alice_rooms(env, ["doomed"])
    again = scripts(env, PUBLISH.format(name=stream, count=3))
    assert [again.line() for _ in range(3)] == ["1", "2", "3"]
    again.finish()


def test_renaming_a_room_during_a_publish_carries_that_message_and_its_id(
    database, scripts
):
    """The rename waits for the publish in flight: its message moves with the
    others, and the new name's ids go on after it."""
    env, dsn = database
    (old,) = alice_rooms(env, ["before"])
    scripts(env, PUBLISH.format(name=old, count=2)).finish()
    holder, held = held_publish(scripts, env, old)
    assert held == 3
    rename = scripts(env, RENAME_ROOM.format(old="before", new="after"))
    blocked_on_a_lock(dsn)
    holder.release()
    assert rename.line() == "renamed"
    holder.finish()
    rename.finish()
    assert stream_rows(dsn, old) == ([], None)
    assert stream_rows(dsn, "room:after") == ([1, 2, 3], 3)
    later = scripts(env, PUBLISH.format(name="room:after", count=1))
    assert later.line() == "4"
    later.finish()
    assert stream_rows(dsn, "room:after") == ([1, 2, 3, 4], 4)
