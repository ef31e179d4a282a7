"""Message durability across two daphne processes over PostgreSQL and Redis.

Several publishers, each on a random process, publish to `room:lobby`; every
`published` acknowledgement is checked against the database the moment it
arrives (stored before acknowledged). Publishers and readers are cut off at
random (the TCP connection is aborted, no close frame, sometimes with a
publish in flight) and reconnect to a random process; readers resubscribe
with `since` = the last id they processed. At the end every reader has seen
every stored message exactly once, in order, and every acknowledged message
carries what its publisher sent. The seed is printed; set
AUTHSOCKET_DURABILITY_SEED to replay a run.
"""

import asyncio
import json
import os
import random

import psycopg
import pytest
import websockets

from tests.http import call
from tests.reliability.services import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    RedisServer,
    postgres_database,
    postgres_url,
)
from tests.servers import DaphneServer, manage, server_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.services]

PUBLISHERS = 4
PUBLISHES = 40  # each
READERS = 2
DROP_PUBLISHER = 0.12  # per publish
DROP_READER = 0.04  # per message received
TIMEOUT = 20


@pytest.fixture
def cluster(tmp_path):
    """Two daphne processes on one PostgreSQL database and one Redis."""
    redis = RedisServer().start()
    try:
        with postgres_database() as name:
            env = server_env(postgres_url(name), REDIS_URL=redis.url)
            manage(env, "migrate", "--noinput")
            manage(env, "demo_data")
            tokens = manage(
                env,
                "mint_tokens",
                "--users",
                str(PUBLISHERS + READERS),
                "--prefix",
                "dur",
            ).split()
            servers = [
                DaphneServer(env, log_path=tmp_path / f"daphne-{i}.log").start()
                for i in range(2)
            ]
            try:
                yield servers, tokens, name
            finally:
                for server in servers:
                    server.stop()
    finally:
        redis.stop()


def stored(dsn: str, seq: int):
    """The data of lobby message `seq` as the database has it, or None."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT data FROM realtime_message"
            " WHERE stream = 'room:lobby' AND seq = %s",
            (seq,),
        ).fetchone()
    return None if row is None else row[0]


async def connect(servers, token, rng):
    server = rng.choice(servers)
    socket = await websockets.connect(
        f"{server.ws}?token={token}", open_timeout=TIMEOUT, max_queue=None
    )
    frame = json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT))
    assert frame["type"] == "welcome"
    return socket


async def answer(socket, ref) -> dict:
    """The frame answering `ref` (live messages may come first)."""
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT))
        if frame.get("ref") == ref:
            return frame


def drop(socket) -> None:
    """Cut the TCP connection: no close frame, as a lost network would."""
    socket.transport.abort()


async def publisher(index, servers, token, rng, dsn, acked, stats):
    socket = await connect(servers, token, rng)
    for n in range(PUBLISHES):
        data = {"p": index, "n": n}
        await socket.send(
            json.dumps(
                {"type": "publish", "stream": "room:lobby", "data": data, "ref": n}
            )
        )
        if rng.random() < DROP_PUBLISHER:  # in flight: stored or not, never acked
            drop(socket)
            stats["dropped"] += 1
            socket = await connect(servers, token, rng)
            continue
        frame = await answer(socket, n)
        assert frame["type"] == "published", frame
        # Acknowledged means committed: the database has it right now.
        assert await asyncio.to_thread(stored, dsn, frame["id"]) == data
        acked[frame["id"]] = data
    await socket.close()


async def reader(servers, token, rng, seen, target, stats):
    """Collect lobby messages until `target` (set at the end) is reached."""
    last = 0
    while True:
        socket = await connect(servers, token, rng)
        await socket.send(
            json.dumps(
                {"type": "subscribe", "stream": "room:lobby", "since": last, "ref": "s"}
            )
        )
        try:
            while True:
                if target.done() and last >= target.result():
                    await socket.close()
                    return
                try:
                    raw = await asyncio.wait_for(socket.recv(), 0.5)
                except TimeoutError:
                    continue
                frame = json.loads(raw)
                if frame.get("type") == "subscribed":
                    continue
                assert frame["type"] == "message", frame
                if frame["stream"] != "room:lobby":
                    continue
                seen.append((frame["id"], frame["data"]))
                last = frame["id"]
                if rng.random() < DROP_READER:
                    drop(socket)
                    stats["dropped"] += 1
                    break
        except websockets.ConnectionClosed:
            stats["closed"] += 1


async def test_acknowledged_messages_are_stored_and_replayed_exactly_once(cluster):
    servers, tokens, name = cluster
    seed = int(os.environ.get("AUTHSOCKET_DURABILITY_SEED") or random.randrange(2**32))
    print(f"\ndurability seed: {seed}")
    dsn = f"host={POSTGRES_HOST} port={POSTGRES_PORT} user=postgres dbname={name}"
    for token in tokens:  # mint_tokens users are not in the lobby yet
        status, _, _ = call(
            "POST", f"{servers[0].http}/api/rooms/lobby/membership", token=token
        )
        assert status == 204
    acked: dict[int, dict] = {}
    stats = {"dropped": 0, "closed": 0}
    target = asyncio.get_running_loop().create_future()
    views = [[] for _ in range(READERS)]
    readers = [
        asyncio.create_task(
            reader(
                servers,
                tokens[PUBLISHERS + i],
                random.Random(seed + 100 + i),
                views[i],
                target,
                stats,
            )
        )
        for i in range(READERS)
    ]
    await asyncio.gather(
        *(
            publisher(i, servers, tokens[i], random.Random(seed + i), dsn, acked, stats)
            for i in range(PUBLISHERS)
        )
    )
    total = await asyncio.to_thread(last_seq, dsn)
    target.set_result(total)
    _, late = await asyncio.wait(readers, timeout=60)
    for task in late:  # a reader still short of `total`: the lists below say why
        task.cancel()
    for task in readers:
        if not task.cancelled() and task.exception():
            raise task.exception()

    # A publish whose socket the client dropped may still commit after
    # `total` was read, and reach a reader before `target` is set: such a
    # message may be in a view, as long as the order stays exact.
    stored = await asyncio.to_thread(last_seq, dsn)
    assert len(acked) >= PUBLISHERS * PUBLISHES * (1 - 3 * DROP_PUBLISHER)
    assert total >= len(acked)  # plus in-flight publishes the server did store
    for view in views:
        ids = [message_id for message_id, _ in view]
        assert total <= len(ids) <= stored
        assert ids == list(range(1, len(ids) + 1))  # every message, once, in order
        received = dict(view)
        assert all(received[i] == data for i, data in acked.items())
    for server in servers:
        assert "Traceback" not in server.logs()
    print(
        f"{total} stored, {len(acked)} acknowledged, {stats['dropped']} forced"
        f" disconnects, {READERS} readers × {total} messages exactly once"
    )


def last_seq(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT last_message_id FROM realtime_streamcounter"
            " WHERE stream = 'room:lobby'"
        ).fetchone()[0]
