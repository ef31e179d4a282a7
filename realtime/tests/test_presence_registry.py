"""The registry of live sockets (realtime/presence): the same behaviours in
memory and over Redis, with several registries standing for several processes."""

import asyncio
import json
import logging

import pytest

from realtime.presence.events import Change, PresenceChange, Resync, SocketEntry
from realtime.presence.memory import MemoryStore
from realtime.presence.registry import SocketRegistry, UnknownSocket
from realtime.presence.store import snapshot_of
from realtime.presence_frames import snapshot_frame
from realtime.tests.presence import Cluster, Recorder
from tests.reliability.services import TcpCutout
from tests.servers import free_port

pytestmark = pytest.mark.asyncio

S, T = "room:lobby", "room:team"


@pytest.fixture
async def redis_cluster():
    cluster = Cluster("redis")
    yield cluster
    await cluster.close()


async def open_socket(registry, socket_id, user_id, sid="s1", streams=()):
    await registry.socket_open(
        socket_id, user_id=user_id, username=f"user{user_id}", sid=sid
    )
    return [await registry.stream_join(socket_id, stream) for stream in streams]


def present(snapshot) -> dict[int, int]:
    return {user.id: user.connections for user in snapshot.users}


def leaves(events) -> list[tuple[str, int]]:
    return sorted(
        (e.stream, e.user_id)
        for e in events
        if isinstance(e, PresenceChange) and e.kind == Change.LEAVE
    )


# --- counting -------------------------------------------------------------------


async def test_the_first_socket_joins_and_the_last_one_leaves(cluster):
    p = await cluster.process()
    [join] = await open_socket(p, "a1", 1, streams=[S])
    assert (join.kind, join.stream, join.user, join.socket_id) == (
        Change.JOIN,
        S,
        {"id": 1, "username": "user1"},
        "a1",
    )
    assert await open_socket(p, "a2", 1, streams=[S]) == [None]
    assert await p.stream_leave("a1", S) is None
    leave = await p.stream_leave("a2", S)
    assert (leave.kind, leave.user_id, leave.username) == (Change.LEAVE, 1, "user1")
    assert leave.version > join.version
    assert leave.joined == join.version  # the presence it ends began there
    assert (await p.snapshot(S)).count == 0


async def test_a_user_counts_once_across_processes_with_all_his_connections(cluster):
    p1, p2 = await cluster.process(), await cluster.process()
    await open_socket(p1, "a1", 1, streams=[S])
    assert await open_socket(p2, "a2", 1, streams=[S]) == [None]
    await open_socket(p2, "b1", 2, streams=[S, T])
    snapshot = await p1.snapshot(S)
    assert (present(snapshot), snapshot.count, snapshot.truncated) == (
        {1: 2, 2: 1},
        2,
        False,
    )
    assert snapshot.payload() == {
        "users": [
            {"id": 1, "username": "user1", "connections": 2},
            {"id": 2, "username": "user2", "connections": 1},
        ],
        "count": 2,
    }
    assert present(await p2.snapshot(T)) == {2: 1}


async def test_a_leave_names_the_join_that_began_it_on_any_process(cluster):
    p1, p2 = await cluster.process(), await cluster.process()
    [join] = await open_socket(p1, "a1", 1, streams=[S])
    await open_socket(p2, "a2", 1, streams=[S])
    assert await p1.stream_leave("a1", S) is None
    assert (await p2.stream_leave("a2", S)).joined == join.version
    [again] = await open_socket(p2, "a3", 1, streams=[S])
    [leave] = await p2.socket_close("a3")
    assert leave.joined == again.version > join.version


async def test_a_join_and_the_snapshot_after_it_are_one_step(cluster):
    p1, p2 = await cluster.process(), await cluster.process()
    await open_socket(p2, "b1", 2, streams=[S])
    await p1.socket_open("a1", user_id=1, username="user1", sid="s1")
    join, snapshot = await p1.stream_join_read("a1", S)
    assert (join.kind, join.user_id, join.socket_id) == (Change.JOIN, 1, "a1")
    assert present(snapshot) == {1: 1, 2: 1}
    assert snapshot.version == join.version  # read right after it
    await open_socket(p2, "a2", 1, streams=[S])
    again, fresh = await p1.stream_join_read("a1", S)  # already on S
    assert again is None and present(fresh) == {1: 2, 2: 1}


async def test_subscribing_twice_and_leaving_twice_change_nothing(cluster):
    p = await cluster.process()
    await open_socket(p, "a1", 1, streams=[S])
    assert await p.stream_join("a1", S) is None
    assert present(await p.snapshot(S)) == {1: 1}
    assert await p.stream_leave("a1", S) is not None
    assert await p.stream_leave("a1", S) is None
    assert await p.stream_leave("nobody", S) is None


async def test_closing_a_socket_leaves_every_stream_it_was_on(cluster):
    p = await cluster.process()
    await open_socket(p, "a1", 1, streams=[S, T])
    await open_socket(p, "a2", 1, streams=[T])
    changes = await p.socket_close("a1")
    assert [(c.kind, c.stream) for c in changes] == [(Change.LEAVE, S)]
    assert await p.socket_close("a1") == []
    assert present(await p.snapshot(T)) == {1: 1}
    assert (await p.user_connections(1)).connections == 1


async def test_a_snapshot_lists_at_most_the_limit_and_counts_everyone(cluster):
    p = await cluster.process()
    for user_id in (3, 1, 2):
        await open_socket(p, f"s{user_id}", user_id, streams=[S])
    snapshot = await p.snapshot(S, limit=2)
    assert ([u.id for u in snapshot.users], snapshot.count) == ([1, 2], 3)
    assert snapshot.payload()["truncated"] is True


async def test_a_subscribers_own_snapshot_lists_him_also_when_cut(cluster):
    """§4.4: the snapshot includes the caller, and lists at most the limit.
    Cut by id alone, a caller above the first `limit` ids would be missing."""
    p = await cluster.process()
    for user_id in (1, 2, 3, 4):
        await open_socket(p, f"s{user_id}", user_id, streams=[S])
    await p.socket_open("s9", user_id=9, username="user9", sid="s1")
    _, own = await p.stream_join_read("s9", S, limit=3)
    assert ([u.id for u in own.users], own.count, own.truncated) == ([1, 2, 9], 5, True)
    assert own.listed_ids() == [1, 2, 9] and own.lists(9)
    again = await p.stream_join_read("s9", S, limit=3)  # already on it
    assert [u.id for u in again[1].users] == [1, 2, 9]
    # Anyone else's read is the first ids; the caller within them stays put.
    assert [u.id for u in (await p.snapshot(S, limit=3)).users] == [1, 2, 3]
    _, low = await p.stream_join_read("s2", S, limit=3)
    assert [u.id for u in low.users] == [1, 2, 3]


async def test_a_snapshot_lists_its_users_in_order_and_finds_exactly_them(cluster):
    """Filters look users up with `Snapshot.lists`: it must find the users
    listed and no other, whatever joined and left, cut at the limit too."""
    p = await cluster.process()
    for user_id in (5, 3, 9, 1, 7):
        await open_socket(p, f"s{user_id}", user_id, streams=[S])
    await p.stream_leave("s9", S)
    await open_socket(p, "s4", 4, streams=[S])
    for limit in (1000, 3):
        snapshot = await p.snapshot(S, limit=limit)
        assert [u.id for u in snapshot.users] == [1, 3, 4, 5, 7][:limit]
        found = [uid for uid in range(12) if snapshot.lists(uid)]
        assert found == [1, 3, 4, 5, 7][:limit]
        assert snapshot.listed_ids() == [1, 3, 4, 5, 7][:limit]
        if snapshot.ids is not None:  # the memory store's: the same
            assert snapshot.ids == [1, 3, 4, 5, 7][:limit]


async def test_a_snapshot_is_rendered_the_same_by_every_store(cluster):
    """Redis builds each user's part of the frame in Lua, memory in Python:
    the same text, whatever the name holds, in id order, ids exact."""
    p = await cluster.process()
    users = {
        9_007_199_254_740_993: 'o"brien\\',  # beyond 2^53: a float would round it
        2: "zoë 🎉",
        10: "</script>",
        11: "half \udc80 a pair",  # a lone surrogate: not UTF-8 as it is
        1: "plain",
    }
    for user_id, name in users.items():
        await p.socket_open(f"s{user_id}", user_id=user_id, username=name, sid="s")
        await p.stream_join(f"s{user_id}", S)
    await p.stream_join_read("s1", S)  # already on it: counted once
    rows = sorted((uid, name, 1) for uid, name in users.items())
    expected = snapshot_of(rows, version=0, limit=1000)

    snapshot = await p.snapshot(S)
    assert snapshot.listed == expected.listed
    assert all(snapshot.lists(uid) for uid in users)
    text = snapshot_frame(S, snapshot)
    text.encode("utf-8")  # what daphne sends must be UTF-8
    frame = json.loads(text)
    assert frame["users"] == expected.payload()["users"]
    assert [u.username for u in snapshot.users] == [name for _, name, _ in rows]
    leave = await p.stream_leave("s9007199254740993", S)
    assert (leave.user_id, leave.username) == (9_007_199_254_740_993, 'o"brien\\')


async def test_a_users_part_follows_his_count_and_his_latest_name(cluster):
    p = await cluster.process()
    await open_socket(p, "a1", 1, streams=[S])
    await p.socket_open("a2", user_id=1, username="renamed", sid="s2")
    await p.stream_join("a2", S)
    assert [tuple(u) for u in (await p.snapshot(S)).users] == [(1, "renamed", 2)]
    await p.stream_leave("a1", S)
    snapshot = await p.snapshot(S)
    assert ([tuple(u) for u in snapshot.users], snapshot.count) == (
        [(1, "renamed", 1)],
        1,
    )
    await p.stream_leave("a2", S)
    assert (await p.snapshot(S)).listed == ""


async def test_connections_are_counted_per_session_on_every_process(cluster):
    p1, p2 = await cluster.process(), await cluster.process()
    await open_socket(p1, "a1", 1, sid="phone")
    await open_socket(p2, "a2", 1, sid="phone")
    await open_socket(p2, "a3", 1, sid="laptop")
    await open_socket(p1, "b1", 2, sid="tablet")
    assert (await p1.user_connections(1)).payload() == {
        "connections": 3,
        "sessions": [
            {"id": "laptop", "connections": 1},
            {"id": "phone", "connections": 2},
        ],
    }
    rows = await p2.connected_now()
    assert [(r.id, r.username, r.connections) for r in rows] == [
        (1, "user1", 3),
        (2, "user2", 1),
    ]
    await p2.socket_close("a2")
    assert (await p1.user_connections(1)).connections == 2
    assert (await p1.user_connections(99)).payload() == {
        "connections": 0,
        "sessions": [],
    }


async def test_versions_of_a_stream_increase_and_the_snapshot_has_the_latest(
    cluster,
):
    p1, p2 = await cluster.process(), await cluster.process()
    changes = []
    for n in range(6):
        process = (p1, p2)[n % 2]
        changes += await open_socket(process, f"s{n}", n + 1, streams=[S])
        assert (await p1.snapshot(S)).version == changes[-1].version
    changes += await p2.socket_close("s1")
    versions = [c.version for c in changes]
    assert versions == sorted(set(versions))
    assert (await p1.snapshot(S)).version == versions[-1]


async def test_streams_of_a_socket_never_opened_are_refused_or_ignored(cluster):
    p = await cluster.process(start=False)
    with pytest.raises(UnknownSocket):
        await p.stream_join("ghost", S)
    assert await p.socket_close("ghost") == []
    await open_socket(p, "a1", 1, streams=[S])  # opening starts the heartbeat
    assert p.on_change is not None
    await p.start()  # idempotent
    assert present(await p.snapshot(S)) == {1: 1}


# --- races ----------------------------------------------------------------------


async def test_concurrent_subscribes_and_closes_of_one_user_join_and_leave_once(
    cluster,
):
    processes = [await cluster.process() for _ in range(3)]
    sockets = [(processes[n % 3], f"a{n}") for n in range(30)]
    for process, socket_id in sockets:
        await process.socket_open(socket_id, user_id=1, username="alice", sid="s")
    joins = await asyncio.gather(*(p.stream_join(s, S) for p, s in sockets))
    assert sum(change is not None for change in joins) == 1
    assert present(await processes[0].snapshot(S)) == {1: 30}
    closes = await asyncio.gather(*(p.socket_close(s) for p, s in sockets))
    assert sum(len(changes) for changes in closes) == 1
    assert (await processes[1].snapshot(S)).count == 0


# --- processes that die ---------------------------------------------------------


async def test_a_killed_process_users_leave_within_the_ttl_plus_one_second(cluster):
    ttl = 2
    alive, doomed = await cluster.process(ttl=ttl), await cluster.process(ttl=ttl)
    await open_socket(doomed, "a1", 1, streams=[S, T])  # only there
    await open_socket(doomed, "b1", 2, streams=[S])  # also alive elsewhere
    await open_socket(alive, "b2", 2, streams=[S])
    await doomed.stop(goodbye=False)  # SIGKILL: no goodbye, no more heartbeats
    took = await alive.on_change.wait_for(lambda events: leaves(events), ttl + 2)
    assert took <= ttl + 1
    assert leaves(alive.on_change.events) == [(S, 1), (T, 1)]
    assert all(e.socket_id is None for e in alive.on_change.events)
    assert present(await alive.snapshot(S)) == {2: 1}
    assert (await alive.user_connections(1)).connections == 0
    assert [row.id for row in await alive.connected_now()] == [2]


async def test_a_dead_process_of_an_earlier_build_is_cleaned_up(redis_cluster):
    """Its socket entries hold the name as written, not as JSON."""
    ttl = 2
    alive = await redis_cluster.process(ttl=ttl)
    doomed = await redis_cluster.process(ttl=ttl)
    await open_socket(doomed, "o1", 1, streams=[S])
    await open_socket(doomed, "o2", 2, streams=[S])
    entries = redis_cluster.key("sock", doomed.process_id)
    await redis_cluster.admin.hset(entries, "o1", "1|s1|user1")
    await redis_cluster.admin.hset(entries, "o2", '2|s1|"quoted')
    await doomed.stop(goodbye=False)

    await alive.on_change.wait_for(lambda events: len(leaves(events)) == 2, ttl + 2)

    assert leaves(alive.on_change.events) == [(S, 1), (S, 2)]
    assert (await alive.snapshot(S)).count == 0
    assert await alive.connected_now() == []


async def test_a_dead_process_is_cleaned_up_by_one_process_only(cluster):
    ttl = 2
    survivors = [await cluster.process(ttl=ttl) for _ in range(3)]
    doomed = await cluster.process(ttl=ttl)
    for n in range(5):
        await open_socket(doomed, f"d{n}", n + 1, streams=[S])
    await doomed.stop(goodbye=False)

    def all_left():
        return sum(len(leaves(p.on_change.events)) for p in survivors) >= 5

    async def settled():
        while not all_left():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(settled(), ttl + 2)
    await asyncio.sleep(3 * survivors[0].tick)  # give a second cleaner time to err
    everyone = [e for p in survivors for e in p.on_change.events]
    assert leaves(everyone) == [(S, n + 1) for n in range(5)]


async def taken_for_dead(reaper, doomed, monkeypatch, act) -> None:
    """`doomed` stalls (no heartbeat) until `reaper` takes it for dead; then,
    once the reaper has read its entries, `act` runs: the stalled process
    resumes and does what it had queued, while the reaper cleans up."""
    read = reaper.store.process_entries
    acted = []

    async def read_then_act(pid):
        entries = await read(pid)
        if pid == doomed.process_id and not acted:
            acted.append(pid)
            await act()
        return entries

    monkeypatch.setattr(reaper.store, "process_entries", read_then_act)
    async with asyncio.timeout(doomed.ttl + 2):
        while doomed.process_id not in await reaper.store.processes_dead("-"):
            await asyncio.sleep(0.05)
    await reaper.start()  # its first scan reaps `doomed`
    assert acted


async def test_a_stalled_process_that_subscribes_while_reaped_counts_once_when_back(
    cluster, monkeypatch
):
    """Its heartbeat expired, so it was taken for dead; the subscribe it made
    meanwhile must neither outlive its socket nor count twice once it is back
    (its next heartbeat round registers it again and rebuilds its entries)."""
    ttl = 1
    doomed = await cluster.process(ttl=ttl)
    await open_socket(doomed, "d1", 1, streams=[S])
    await doomed.stop(goodbye=False)  # stalled
    reaper = await cluster.process(ttl=ttl, start=False)
    await taken_for_dead(
        reaper, doomed, monkeypatch, lambda: doomed.stream_join("d1", T)
    )
    assert leaves(reaper.on_change.events) == [(S, 1)]
    await doomed._tick()  # back: the heartbeat's next round
    assert present(await reaper.snapshot(S)) == {1: 1}
    assert present(await reaper.snapshot(T)) == {1: 1}
    assert (await reaper.user_connections(1)).connections == 1
    assert len(await doomed.socket_close("d1")) == 2  # the leaves of S and T
    assert (await reaper.snapshot(S)).count == (await reaper.snapshot(T)).count == 0


async def test_what_a_process_taken_for_dead_added_while_reaped_is_reaped_later(
    cluster, monkeypatch
):
    """It subscribed a socket during its cleanup, then died for good: that
    user's leave still comes, one TTL later, not never."""
    ttl = 1
    doomed = await cluster.process(ttl=ttl)
    await open_socket(doomed, "d1", 1, streams=[S])
    await open_socket(doomed, "d2", 2, sid="s2")
    await doomed.stop(goodbye=False)
    reaper = await cluster.process(ttl=ttl, start=False)

    async def subscribe_and_open():
        await doomed.stream_join("d1", T)
        await doomed.stream_join("d2", S)
        entry = SocketEntry(user_id=3, sid="s3", username="user3")
        await doomed.store.socket_add(doomed.process_id, "d3", entry)

    await taken_for_dead(reaper, doomed, monkeypatch, subscribe_and_open)
    await reaper.on_change.wait_for(
        lambda events: leaves(events) == [(S, 1), (S, 2), (T, 1)], 2 * ttl + 2
    )
    assert (await reaper.snapshot(S)).count == (await reaper.snapshot(T)).count == 0
    assert (await reaper.user_connections(3)).connections == 0
    assert await reaper.connected_now() == []


class LeaveFailsOnce(MemoryStore):
    """A store whose `fail_at`-th leave fails as an unreachable Redis does."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.leaves_left = fail_at

    async def stream_leave(self, pid: str, socket_id: str, stream: str):
        self.leaves_left -= 1
        if self.leaves_left == 0:
            raise ConnectionError("the store went away")
        return await super().stream_leave(pid, socket_id, stream)


async def test_leaves_decided_before_a_cleanup_fails_are_still_sent():
    """The store failed in the middle of a dead process's cleanup: the
    leaves it had already decided are sent now (the next claim cannot see
    them again), the rest when the cleanup is tried again."""
    ttl = 1
    store = LeaveFailsOnce(fail_at=2)
    doomed = SocketRegistry(store, ttl=ttl, on_change=Recorder())
    for n in (1, 2):
        await open_socket(doomed, f"d{n}", n, streams=[S])
    await doomed.stop(goodbye=False)
    reaper = SocketRegistry(store, ttl=ttl, on_change=Recorder())
    await reaper.start()
    try:
        await reaper.on_change.wait_for(
            lambda events: leaves(events) == [(S, 1), (S, 2)], 2 * ttl + 3
        )
    finally:
        await reaper.stop(goodbye=False)
    assert (await reaper.snapshot(S)).count == 0


class CancelSwallowingStore(MemoryStore):
    """A store whose heartbeat call turns a cancel into a timeout of its own,
    as an asyncio timeout inside a client can when the two meet."""

    def __init__(self) -> None:
        super().__init__()
        self.beating = asyncio.Event()

    async def process_beat(self, pid: str, *, ttl: float) -> bool:
        self.beating.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise TimeoutError("the call was cancelled") from None
        return True


async def test_stop_ends_the_heartbeat_even_when_a_call_swallows_the_cancel():
    store = CancelSwallowingStore()
    registry = SocketRegistry(store, ttl=0.3)
    await registry.start()
    await asyncio.wait_for(store.beating.wait(), 5)
    ticker = registry._ticker
    await asyncio.wait_for(registry.stop(goodbye=False), 2)
    assert ticker.done()  # not beating on in the background


async def test_a_goodbye_removes_the_entries_and_reports_the_leaves(cluster):
    p1, p2 = await cluster.process(), await cluster.process()
    await open_socket(p1, "a1", 1, streams=[S])
    await p1.stop()
    assert leaves(p1.on_change.events) == [(S, 1)]
    assert (await p2.snapshot(S)).count == 0
    assert await p2.connected_now() == []


# --- Redis forgets, Redis is away ----------------------------------------------


@pytest.mark.services
async def test_after_redis_forgot_everything_each_process_rebuilds_and_resyncs(
    redis_cluster,
):
    p1 = await redis_cluster.process(ttl=2)
    p2 = await redis_cluster.process(ttl=2)
    await open_socket(p1, "a1", 1, sid="x", streams=[S])
    await open_socket(p2, "b1", 2, sid="y", streams=[S, T])
    await redis_cluster.forget_everything()
    for process, streams in ((p1, {S}), (p2, {S, T})):
        await process.on_change.wait_for(
            lambda events, streams=streams: (
                {e.stream for e in events if isinstance(e, Resync)} == streams
            )
        )
    assert present(await p1.snapshot(S)) == {1: 1, 2: 1}
    assert present(await p1.snapshot(T)) == {2: 1}
    assert (await p2.user_connections(1)).connections == 1
    assert [row.id for row in await p1.connected_now()] == [1, 2]
    assert not leaves(p1.on_change.events + p2.on_change.events)


@pytest.mark.services
async def test_an_unreachable_redis_degrades_to_this_process_answers(
    redis_cluster, caplog
):
    dead_end = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    p = await redis_cluster.process(url=dead_end)
    with caplog.at_level(logging.WARNING, logger="realtime.presence.registry"):
        [join] = await open_socket(p, "a1", 1, streams=[S])
        assert await open_socket(p, "a2", 1, streams=[S]) == [None]
        await open_socket(p, "b1", 2, streams=[S])
        await p.socket_open("c1", user_id=3, username="user3", sid="s1")
        carol, seen = await p.stream_join_read("c1", S)
        assert p.degraded
        assert join.user_id == 1
        assert carol.user_id == 3 and present(seen) == {1: 2, 2: 1, 3: 1}
        # Answered from this process, cut at a limit: the caller is listed.
        cut = await p.snapshot(S, limit=2, include=3)
        assert (present(cut), cut.count, cut.truncated) == ({1: 2, 3: 1}, 3, True)
        assert (await p.socket_close("c1"))[0].joined is None  # not known here
        assert present(await p.snapshot(S)) == {1: 2, 2: 1}
        assert (await p.user_connections(1)).connections == 2
        assert [row.id for row in await p.connected_now()] == [1, 2]
        assert await p.socket_close("a1") == []
        [leave] = await p.socket_close("a2")
        assert (leave.kind, leave.user_id) == (Change.LEAVE, 1)
        await asyncio.sleep(2 * p.tick)  # heartbeats keep failing, quietly
    outage_lines = [r for r in caplog.records if "degraded" in r.getMessage()]
    assert len(outage_lines) == 1


@pytest.mark.services
async def test_calls_made_during_an_outage_reach_redis_when_it_answers_again(
    redis_cluster,
):
    host, port = "127.0.0.1", int(redis_cluster.url.rsplit(":", 1)[1].split("/")[0])
    cutout = TcpCutout(host, port).start()
    db = redis_cluster.url.rsplit("/", 1)[1]
    try:
        observer = await redis_cluster.process()
        p = await redis_cluster.process(
            ttl=3, url=f"redis://127.0.0.1:{cutout.port}/{db}"
        )
        await open_socket(p, "gone", 1, streams=[S])
        await open_socket(p, "kept", 3, streams=[S])  # written back once, not twice
        cutout.cut()
        await open_socket(p, "new", 2, streams=[S])  # missed by Redis
        await p.socket_close("gone")  # missed by Redis
        assert p.degraded
        assert present(await observer.snapshot(S)) == {1: 1, 3: 1}  # stale meanwhile
        cutout.restore()
        await p.on_change.wait_for(
            lambda events: any(isinstance(e, Resync) for e in events)
        )
        assert not p.degraded
        assert present(await observer.snapshot(S)) == {2: 1, 3: 1}
        assert [row.id for row in await observer.connected_now()] == [2, 3]
    finally:
        cutout.stop()


async def test_watchers_asking_at_once_share_one_snapshot_read_and_rendering(cluster):
    p = await cluster.process()
    await open_socket(p, "a1", 1, streams=[S])
    rendered = []

    def render(snapshot):
        rendered.append(snapshot)
        return f"{snapshot.count} here"

    answers = await asyncio.gather(*(p.snapshot_shared(S, render) for _ in range(5)))
    assert len(rendered) == 1  # one read, one rendering, for all five
    assert {text for _, text in answers} == {"1 here"}
    await open_socket(p, "b1", 2, streams=[S])
    _, text = await p.snapshot_shared(S, render)  # a later ask reads again
    assert text == "2 here" and len(rendered) == 2
