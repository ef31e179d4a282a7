"""Messages keyed by stream name: the migration keeps every id and counter.

Run on the real migration graph: migrate back to the room/user foreign keys,
store messages with the historical models, migrate forward, and check that a
client resuming with `since` sees no `reset`.
"""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.models import User
from realtime.models import Message, StreamCounter
from realtime.tests.conftest import TIMEOUT, db, subscribe

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("realtime", "0002_idempotent_publish")]


def migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)


def latest() -> list:
    return [node for node in MigrationExecutor(connection).loader.graph.leaf_nodes()]


def old_world() -> dict:
    """Rooms, a user stream and messages as v1 stored them (ids with gaps)."""
    migrate(BEFORE)
    apps = MigrationExecutor(connection).loader.project_state(BEFORE).apps
    UserModel = apps.get_model("accounts", "User")
    Room = apps.get_model("realtime", "Room")
    Membership = apps.get_model("realtime", "Membership")
    UserStream = apps.get_model("realtime", "UserStream")
    Message = apps.get_model("realtime", "Message")
    alice = UserModel.objects.create(username="alice", password="!")
    team = Room.objects.create(slug="team", last_message_id=3)
    lobby = Room.objects.create(slug="lobby", public=True, last_message_id=0)
    Membership.objects.create(user=alice, room=team)
    for seq in (1, 2, 3):
        Message.objects.create(room=team, seq=seq, sender=alice, data={"n": seq})
    # The user stream's first message was pruned: its counter is ahead.
    UserStream.objects.create(user=alice, last_message_id=2)
    Message.objects.create(recipient=alice, seq=2, data="note")
    return {"alice": alice.pk, "team": team.pk, "lobby": lobby.pk}


@pytest.mark.asyncio
async def test_every_id_survives_and_since_sees_no_reset(connect):
    ids = await db(old_world)
    await db(migrate, await db(latest))
    alice = await db(User.objects.get, pk=ids["alice"])
    stored = await db(
        lambda: sorted(Message.objects.values_list("stream", "seq", "data"))
    )
    assert stored == [
        ("room:team", 1, {"n": 1}),
        ("room:team", 2, {"n": 2}),
        ("room:team", 3, {"n": 3}),
        (f"user:{alice.pk}", 2, "note"),
    ]
    counters = await db(
        lambda: dict(StreamCounter.objects.values_list("stream", "last_message_id"))
    )
    assert counters == {"room:team": 3, "room:lobby": 0, f"user:{alice.pk}": 2}

    socket = await connect(alice)
    resumed = await subscribe(socket, "room:team", since=3)
    assert resumed == {"type": "subscribed", "stream": "room:team", "last_id": 3}
    assert await subscribe(socket, "user", since=2) == {
        "type": "subscribed",
        "stream": "user",
        "last_id": 2,
    }
    other = await connect(alice)
    assert "reset" not in await subscribe(other, "room:team", since=1)
    replayed = [await other.receive_json_from(timeout=TIMEOUT) for _ in range(2)]
    assert [m["id"] for m in replayed] == [2, 3]
    # The next message is numbered after the carried-over counter.
    answer = await subscribe(other, "room:team")
    assert answer["last_id"] == 3


def test_migrating_back_restores_room_and_user_keys():
    ids = old_world()
    migrate(latest())
    migrate(BEFORE)
    apps = MigrationExecutor(connection).loader.project_state(BEFORE).apps
    Room = apps.get_model("realtime", "Room")
    Message = apps.get_model("realtime", "Message")
    UserStream = apps.get_model("realtime", "UserStream")
    assert Room.objects.get(pk=ids["team"]).last_message_id == 3
    assert sorted(
        Message.objects.filter(room_id=ids["team"]).values_list("seq", flat=True)
    ) == [1, 2, 3]
    assert Message.objects.get(recipient_id=ids["alice"]).seq == 2
    assert UserStream.objects.get(user_id=ids["alice"]).last_message_id == 2
    migrate(latest())


OLD_ROWS_SQL = """
INSERT INTO accounts_user (id, username, password, first_name, last_name, email,
    is_staff, is_active, is_superuser, date_joined)
    VALUES (5, 'alice', '!', '', '', '', false, true, false, now());
INSERT INTO realtime_room (id, slug, title, public, last_message_id, created_at)
    VALUES (1, 'team', '', false, 3, now());
INSERT INTO realtime_userstream (user_id, last_message_id) VALUES (5, 2);
INSERT INTO realtime_message (room_id, recipient_id, seq, sender_id, data, created_at)
    VALUES (1, NULL, 2, 5, '1', now()), (1, NULL, 3, 5, '2', now()),
           (NULL, 5, 2, NULL, '"note"', now());
"""


@pytest.mark.services
def test_the_migration_runs_both_ways_on_postgresql():
    """PostgreSQL is stricter about altering tables a transaction wrote to."""
    import psycopg

    from tests.servers import manage, server_env
    from tests.services import postgres_database, require_postgres

    require_postgres()
    with postgres_database() as url:
        env = server_env(url)
        manage(env, "migrate", "--noinput", "realtime", "0002")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(OLD_ROWS_SQL)
        manage(env, "migrate", "--noinput")
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT stream, seq FROM realtime_message ORDER BY stream, seq"
            ).fetchall()
            counters = conn.execute(
                "SELECT stream, last_message_id FROM realtime_streamcounter"
            ).fetchall()
        assert rows == [("room:team", 2), ("room:team", 3), ("user:5", 2)]
        assert sorted(counters) == [("room:team", 3), ("user:5", 2)]
        manage(env, "migrate", "--noinput", "realtime", "0002")
        with psycopg.connect(url, autocommit=True) as conn:
            back = conn.execute(
                "SELECT room_id, recipient_id, seq FROM realtime_message"
                " ORDER BY seq, room_id"
            ).fetchall()
            last = conn.execute("SELECT last_message_id FROM realtime_room").fetchone()
        assert sorted(back, key=str) == sorted(
            [(1, None, 2), (1, None, 3), (None, 5, 2)], key=str
        )
        assert last == (3,)
