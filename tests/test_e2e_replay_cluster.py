"""History, replay and publishing as deployed: two daphne processes, PostgreSQL, Redis.

Raw `websockets` clients and plain HTTP against real processes
(docs/protocol.md §2, §4.2):

- while sockets on BOTH processes and the server API (with and without
  `Idempotency-Key`) publish to one room at once, subscribers that join at
  different moments with `since` (0, the live edge, none) or that drop and
  resume on the other process receive every id exactly once, in increasing
  order, from where they asked to the end, with what was published; a
  reader paging `after=` over HTTP skips none;
- `since` equal to `last_id`, past it, an id of another stream, and older
  than pruned history;
- `prune_history` committing between the two reads of a replay (forced: the
  prune holds the message table locked while the replay waits on it).
"""

import asyncio
import itertools
import json
import threading
from dataclasses import dataclass, field

import pytest
import websockets

from tests.db_scripts import Script, blocked_on_a_lock, stream_rows
from tests.http import call
from tests.reliability.services import RedisServer
from tests.servers import DaphneServer, manage, server_env
from tests.services import postgres_database
from tests.wsclient import silent

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.asyncio]

REPLAY_LIMIT = 25  # small, so that long replays are paged with next_since
SOCKET_PUBLISHERS = 2  # per process
SOCKET_PUBLISHES = 75  # each
API_PUBLISHERS = 2
API_PUBLISHES = 75  # each
WINDOW = 8  # publishes in flight on one socket
TIMEOUT = 20  # seconds for a frame that is due
USERS = 12  # minted users, members of every room made here
KEEP = 10  # AUTHSOCKET_HISTORY_MAX_PER_STREAM of the prune runs


@dataclass
class Cluster:
    env: dict[str, str]
    dsn: str
    servers: list[DaphneServer]
    key: str  # a service key
    tokens: list[str]  # access tokens of the minted users, all room members

    def rooms(self, *slugs: str) -> list[str]:
        """Public rooms with every minted user a member; their stream names."""
        manage(
            self.env,
            "shell",
            "--no-imports",
            "-c",
            "from accounts.models import User; from realtime.models import Room;"
            "from realtime.services import membership_create;"
            "users = list(User.objects.filter(username__startswith='e2e'));"
            f"rooms = [Room.objects.create(slug=s, public=True) for s in {slugs!r}];"
            "[membership_create(user=u, room=r) for r in rooms for u in users]",
        )
        return [f"room:{slug}" for slug in slugs]

    def publish(self, stream: str, data, *, server: int = 0, key: str | None = None):
        """Publish through the server API; the stored message."""
        headers = {"Authorization": f"ApiKey {self.key}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        status, body, _ = call(
            "POST",
            f"{self.servers[server].http}/api/server/publish",
            {"stream": stream, "data": data},
            headers=headers,
        )
        assert status == 201, body
        return body

    def history(self, stream: str, *, server: int = 0, **query) -> list[dict]:
        params = "&".join(f"{name}={value}" for name, value in query.items())
        slug = stream.removeprefix("room:")
        status, body, _ = call(
            "GET",
            f"{self.servers[server].http}/api/rooms/{slug}/messages?{params}",
            token=self.tokens[-1],
        )
        assert status == 200, body
        return body


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    logs = tmp_path_factory.mktemp("replay-cluster")
    redis = RedisServer().start()
    try:
        with postgres_database() as url:
            env = server_env(
                url,
                REDIS_URL=redis.url,
                AUTHSOCKET_FRAME_RATE="5000/s",
                AUTHSOCKET_REPLAY_LIMIT=str(REPLAY_LIMIT),
            )
            manage(env, "migrate", "--noinput")
            key = manage(env, "service_key", "create", "replay-e2e").strip()
            tokens = manage(
                env, "mint_tokens", "--users", str(USERS), "--prefix", "e2e"
            ).split()
            servers = [
                DaphneServer(env, log_path=logs / f"daphne-{i}.log") for i in range(2)
            ]
            try:
                for server in servers:
                    server.start()
                yield Cluster(env, url, servers, key, tokens)
            finally:
                for server in servers:
                    server.stop()
            for server in servers:
                assert "Traceback" not in server.logs()
    finally:
        redis.stop()


# --- raw clients ---------------------------------------------------------------


async def connect(server: DaphneServer, token: str):
    socket = await websockets.connect(
        f"{server.ws}?token={token}", open_timeout=TIMEOUT, max_queue=None
    )
    welcome = json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT))
    assert welcome["type"] == "welcome", welcome
    return socket


async def receive(socket) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT))


async def send(socket, frame: dict) -> None:
    await socket.send(json.dumps(frame))


async def replay_of(socket, stream: str, since: int | None) -> tuple[dict, list[dict]]:
    """Subscribe; `(subscribed, the replayed messages)`, following
    `replay.truncated` to the end of the replay."""
    frame = {"type": "subscribe", "stream": stream}
    if since is not None:
        frame["since"] = since
    await send(socket, frame)
    answer = await receive(socket)
    assert answer["type"] == "subscribed", answer
    replayed = []
    while True:
        if since is None or since >= answer["last_id"]:
            return answer, replayed
        last = replayed[-1]["id"] if replayed else since
        if last == answer["last_id"]:
            return answer, replayed
        message = await receive(socket)
        if message["type"] == "replay.truncated":
            assert message["next_since"] == last, (message, replayed)
            await send(socket, {**frame, "since": last})
            again = await receive(socket)
            assert again["type"] == "subscribed" and "reset" not in again, again
            continue
        assert message["type"] == "message" and message.get("replay"), message
        replayed.append(message)


# --- many publishers, many subscribers -------------------------------------------


class Progress:
    """How many publishes were acknowledged; awaitable thresholds."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = asyncio.Condition()

    async def add(self) -> None:
        async with self.changed:
            self.count += 1
            self.changed.notify_all()

    async def reached(self, count: int) -> None:
        async with self.changed:
            await asyncio.wait_for(
                self.changed.wait_for(lambda: self.count >= count), TIMEOUT * 3
            )


async def socket_publisher(server, token, stream, tag, acked, lock, progress) -> None:
    """Publish `SOCKET_PUBLISHES` messages, `WINDOW` at a time; record the acks."""
    socket = await connect(server, token)
    sent = pending = 0
    while sent < SOCKET_PUBLISHES or pending:
        while sent < SOCKET_PUBLISHES and pending < WINDOW:
            data = {"by": tag, "n": sent}
            await send(
                socket, {"type": "publish", "stream": stream, "data": data, "ref": sent}
            )
            sent, pending = sent + 1, pending + 1
        frame = await receive(socket)
        assert frame["type"] == "published", frame
        with lock:  # the API publishers' threads write it too
            assert frame["id"] not in acked, frame
            acked[frame["id"]] = {"by": tag, "n": frame["ref"]}
        pending -= 1
        await progress.add()
    await socket.close()


def api_publisher(cluster, stream, tag, acked, lock, report) -> None:
    """Publish `API_PUBLISHES` through the server API, alternating processes;
    every other one with an `Idempotency-Key` (its own transaction around the
    numbering)."""
    for n in range(API_PUBLISHES):
        data = {"by": tag, "n": n}
        key = f"{tag}-{n}" if n % 2 else None
        message = cluster.publish(stream, data, server=n % 2, key=key)
        with lock:
            assert message["id"] not in acked, message
            acked[message["id"]] = data
        report()


@dataclass
class Subscriber:
    """A socket that follows the stream from `since` and checks every frame:
    each message is the next id, whatever process it comes through."""

    name: str
    since: int | None
    drop_every: int | None = None  # drop the TCP connection, resume elsewhere
    received: list[dict] = field(default_factory=list)
    resumed: int = 0
    truncated: int = 0


async def follow(cluster, sub: Subscriber, token, first: int, stream, finished, total):
    """Follow `stream` until the id `total`, once `finished` is set (publishing
    is over); start on process `first`, resume on the other one."""
    position = sub.since
    for attempt in itertools.count():
        server = cluster.servers[(first + attempt) % 2]
        socket = await connect(server, token)
        frame = {"type": "subscribe", "stream": stream}
        if position is not None:
            frame["since"] = position
        await send(socket, frame)
        since_connect = 0
        try:
            while True:
                if finished.is_set() and position == total:
                    return
                message = await next_frame(socket, finished)
                if message is None:
                    continue  # finished: check whether this one is done
                kind = message["type"]
                if kind == "subscribed":
                    assert "reset" not in message, (sub.name, message)
                    if position is None:
                        position = message["last_id"]
                    continue
                if kind == "replay.truncated":
                    assert message["next_since"] == position, (sub.name, message)
                    sub.truncated += 1
                    await send(socket, {**frame, "since": position})
                    continue
                assert kind == "message", (sub.name, message)
                assert message["id"] == position + 1, (sub.name, position, message)
                position = message["id"]
                sub.received.append(message)
                since_connect += 1
                if sub.drop_every and since_connect == sub.drop_every:
                    socket.transport.abort()  # no close frame: a lost network
                    sub.resumed += 1
                    break
        finally:
            await socket.close()


async def next_frame(socket, finished: asyncio.Event) -> dict | None:
    """The next frame; None if `finished` is set first (recv is cancel-safe)."""
    if finished.is_set():
        return await receive(socket)
    recv = asyncio.ensure_future(socket.recv())
    stop = asyncio.ensure_future(finished.wait())
    done, _ = await asyncio.wait(
        {recv, stop}, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED
    )
    stop.cancel()
    if recv in done:
        return json.loads(recv.result())
    recv.cancel()
    if not done:
        raise TimeoutError("no frame while messages were due")
    return None


def pager(cluster, stream, finished: threading.Event, total, pages) -> None:
    """Page `after=<last id seen>` over HTTP on both processes: never a gap."""
    last = 0
    for turn in itertools.count():
        if finished.is_set() and last == total:
            return
        page = cluster.history(stream, server=turn % 2, after=last, limit=200)
        for message in page:
            assert message["id"] == last + 1, (last, [m["id"] for m in page])
            last = message["id"]
        pages.append([m["id"] for m in page])
        if not page:
            finished.wait(0.01)  # another process's commits: nothing to await


async def test_every_id_once_in_order_while_both_processes_and_the_api_publish(
    cluster,
):
    """Ids are numbered by PostgreSQL in commit order and fanned out by two
    processes (so one can overtake another on its way to a socket): every
    subscriber still gets each id once, in order, from its `since` on."""
    (stream,) = cluster.rooms("race")
    acked: dict[int, dict] = {}
    lock = threading.Lock()
    progress = Progress()
    loop = asyncio.get_running_loop()
    expected = 2 * SOCKET_PUBLISHERS * SOCKET_PUBLISHES + API_PUBLISHERS * API_PUBLISHES

    def report() -> None:
        asyncio.run_coroutine_threadsafe(progress.add(), loop)

    finished, http_finished = asyncio.Event(), threading.Event()
    subscribers = [
        # (subscriber, acks to wait for before it joins)
        (Subscriber("from-0-early", since=0), 0),
        (Subscriber("from-0-midway", since=0), expected // 3),
        (Subscriber("live-edge", since=None), expected // 4),
        (Subscriber("resuming", since=0, drop_every=37), 10),
        (Subscriber("resuming-late", since=0, drop_every=53), expected // 2),
    ]

    async def join_later(index: int, sub: Subscriber, after: int) -> None:
        await progress.reached(after)
        token = cluster.tokens[4 + index]
        await follow(cluster, sub, token, index, stream, finished, expected)

    async def at_edge(sub: Subscriber, after: int) -> None:
        """Joins with `since` = the newest acknowledged id at that moment."""
        await progress.reached(after)
        with lock:
            sub.since = max(acked)  # committed, so all below it are too
        await follow(cluster, sub, cluster.tokens[10], 1, stream, finished, expected)

    edge = Subscriber("since-newest-ack", since=None)
    pages: list[list[int]] = []
    paging = asyncio.create_task(
        asyncio.to_thread(pager, cluster, stream, http_finished, expected, pages)
    )
    readers = [
        asyncio.create_task(join_later(i, sub, after))
        for i, (sub, after) in enumerate(subscribers)
    ]
    readers.append(asyncio.create_task(at_edge(edge, expected // 2)))
    publishers = [
        socket_publisher(
            cluster.servers[process],
            cluster.tokens[process * SOCKET_PUBLISHERS + i],
            stream,
            f"socket-{process}-{i}",
            acked,
            lock,
            progress,
        )
        for process in (0, 1)
        for i in range(SOCKET_PUBLISHERS)
    ]
    publishers += [
        asyncio.to_thread(
            api_publisher, cluster, stream, f"api-{i}", acked, lock, report
        )
        for i in range(API_PUBLISHERS)
    ]
    await asyncio.gather(*publishers)

    ids, counter = await asyncio.to_thread(stream_rows, cluster.dsn, stream)
    assert ids == list(range(1, expected + 1)) and counter == expected
    assert sorted(acked) == ids  # every publish acknowledged with its own id
    finished.set()
    http_finished.set()
    async with asyncio.timeout(TIMEOUT * 3):
        await asyncio.gather(*readers, paging)

    for sub in [s for s, _ in subscribers] + [edge]:
        got = [m["id"] for m in sub.received]
        start = got[0] - 1 if got else expected
        assert got == list(range(start + 1, expected + 1)), sub.name
        if sub.since is not None:
            assert start == sub.since, sub.name
        assert all(m["data"] == acked[m["id"]] for m in sub.received), sub.name
    by_name = {s.name: s for s, _ in subscribers}
    assert by_name["resuming"].resumed >= 5  # it did drop and resume
    assert by_name["from-0-midway"].truncated > 0  # it did page the replay
    assert [i for page in pages for i in page] == list(range(1, expected + 1))


# --- since at, past, elsewhere, pruned -----------------------------------------


async def test_since_at_the_end_past_it_and_of_another_stream(cluster):
    edges, other = cluster.rooms("edges", "other")
    for n in range(20):
        cluster.publish(edges, n, server=n % 2)
    for n in range(60):
        cluster.publish(other, n, server=n % 2)
    at_end = await connect(cluster.servers[0], cluster.tokens[-1])
    past = await connect(cluster.servers[1], cluster.tokens[-2])
    elsewhere = await connect(cluster.servers[0], cluster.tokens[-3])
    try:
        # since = last_id: nothing replayed, no reset, what follows is live.
        answer, replayed = await replay_of(at_end, edges, since=20)
        assert answer == {"type": "subscribed", "stream": edges, "last_id": 20}
        assert replayed == []
        # since past the end (here: an id of a longer stream): a reset that
        # swallows nothing, not an error.
        answer, replayed = await replay_of(past, edges, since=60)
        assert answer == {
            "type": "subscribed",
            "stream": edges,
            "last_id": 20,
            "reset": True,
        }
        assert replayed == []
        cluster.publish(edges, "after", server=1)
        for socket in (at_end, past):
            message = await receive(socket)
            assert (message["id"], message["data"]) == (21, "after")
            assert "replay" not in message
        # since of another stream that is below this one's end cannot be told
        # apart from a position in this stream: it is replayed from there.
        answer, replayed = await replay_of(elsewhere, other, since=21)
        assert (answer["last_id"], "reset" in answer) == (60, False)
        assert [m["id"] for m in replayed] == list(range(22, 61))
        for socket in (at_end, past, elsewhere):
            assert await silent(socket)
    finally:
        for socket in (at_end, past, elsewhere):
            await socket.close()


async def test_since_older_than_pruned_history_is_a_reset_with_what_is_kept(cluster):
    (stream,) = cluster.rooms("kept")
    for n in range(30):
        cluster.publish(stream, n, server=n % 2)
    pruned = manage(
        {**cluster.env, "AUTHSOCKET_HISTORY_MAX_PER_STREAM": str(KEEP)},
        "prune_history",
    )
    assert "room:" in pruned
    assert (await asyncio.to_thread(stream_rows, cluster.dsn, stream)) == (
        list(range(21, 31)),
        30,
    )
    cases = [(0, True), (3, True), (19, True), (20, False), (25, False)]
    for index, (since, reset) in enumerate(cases):
        socket = await connect(cluster.servers[index % 2], cluster.tokens[-1])
        try:
            answer, replayed = await replay_of(socket, stream, since=since)
            assert answer.get("reset", False) is reset, (since, answer)
            end = 30 + index  # each case below publishes one more
            assert answer["last_id"] == end
            assert [m["id"] for m in replayed] == list(
                range(max(since, 20) + 1, end + 1)
            )
            cluster.publish(stream, "live", server=(index + 1) % 2)
            live = await receive(socket)
            assert (live["id"], live["data"]) == (31 + index, "live")
        finally:
            await socket.close()
    # HTTP history shows what is kept, the same way.
    assert [m["id"] for m in cluster.history(stream, after=0)] == list(range(21, 36))


PRUNE_HOLDING_THE_TABLE = """
import sys
from django.db import connection, transaction
from realtime.history import history_prune
with transaction.atomic():
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE realtime_message IN ACCESS EXCLUSIVE MODE")
    print("locked", flush=True)
    sys.stdin.readline()
    print(history_prune()["room"], flush=True)
"""


async def test_a_prune_committed_between_the_two_reads_of_a_replay_is_a_reset(
    cluster,
):
    """The replay reads the counter (40), then waits on the message table that
    a prune holds; the prune deletes all but the newest ten and commits: the
    replay says `reset` and sends what is kept, up to `last_id`, then live."""
    (stream,) = cluster.rooms("churn")
    for n in range(40):
        cluster.publish(stream, n, server=n % 2)
    socket = await connect(cluster.servers[0], cluster.tokens[-1])
    prune = Script(
        {**cluster.env, "AUTHSOCKET_HISTORY_MAX_PER_STREAM": str(KEEP)},
        PRUNE_HOLDING_THE_TABLE,
    )
    try:
        assert await asyncio.to_thread(prune.line) == "locked"
        await send(socket, {"type": "subscribe", "stream": stream, "since": 5})
        await asyncio.to_thread(blocked_on_a_lock, cluster.dsn)
        prune.release()
        assert int(await asyncio.to_thread(prune.line)) > 0
        await asyncio.to_thread(prune.finish)
        answer = await receive(socket)
        assert answer == {
            "type": "subscribed",
            "stream": stream,
            "last_id": 40,
            "reset": True,
        }
        replayed = [await receive(socket) for _ in range(KEEP)]
        assert [(m["id"], m.get("replay")) for m in replayed] == [
            (n, True) for n in range(31, 41)
        ]
        cluster.publish(stream, "live", server=1)
        assert (await receive(socket))["id"] == 41
        assert await silent(socket)
    finally:
        prune.kill()
        await socket.close()


PUBLISH_HOLDING_THE_TABLE = """
import sys
from django.db import connection, transaction
from realtime.publish import stream_publish
with transaction.atomic():
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE realtime_message IN ACCESS EXCLUSIVE MODE")
    print("locked", flush=True)
    sys.stdin.readline()
    print(stream_publish(name={name!r}, data="during").seq, flush=True)
print("committed", flush=True)  # and fanned out, through Redis
"""


async def test_the_last_message_committed_during_a_replay_follows_it_live_once(
    cluster,
):
    """The replay has read the counter (12) and waits on the message table; a
    third process publishes 13 and commits, and nothing is published after
    it. 13 is not in the replay (it is above `last_id`) and comes live, once,
    right after the replay: the boundary loses no tail message."""
    (stream,) = cluster.rooms("boundary")
    for n in range(12):
        cluster.publish(stream, n, server=n % 2)
    socket = await connect(cluster.servers[1], cluster.tokens[-1])
    publisher = Script(cluster.env, PUBLISH_HOLDING_THE_TABLE.format(name=stream))
    try:
        assert await asyncio.to_thread(publisher.line) == "locked"
        await send(socket, {"type": "subscribe", "stream": stream, "since": 9})
        await asyncio.to_thread(blocked_on_a_lock, cluster.dsn)
        publisher.release()
        assert await asyncio.to_thread(publisher.line) == "13"
        assert await asyncio.to_thread(publisher.line) == "committed"
        await asyncio.to_thread(publisher.finish)
        answer = await receive(socket)
        assert answer == {"type": "subscribed", "stream": stream, "last_id": 12}
        frames = [await receive(socket) for _ in range(4)]
        assert [(m["id"], m.get("replay")) for m in frames] == [
            (10, True),
            (11, True),
            (12, True),
            (13, None),
        ]
        assert frames[-1]["data"] == "during"
        assert await silent(socket)
    finally:
        publisher.kill()
        await socket.close()
