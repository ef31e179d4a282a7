"""Snapshot, then changes: a socket that subscribes while others join and
leave ends with the right view, never told twice, never told of itself."""

import asyncio
import json
import random

import pytest

from realtime.channels_overrides import LocalChannelLayer
from realtime.presence.events import Change, PresenceChange, Resync, Snapshot
from realtime.presence.ordering import PresenceFilter
from realtime.tests.presence import BACKENDS, Cluster

S = "room:lobby"
GROUP = "presence.lobby"


def change(kind, user_id, version):
    return PresenceChange(kind, S, user_id, f"user{user_id}", version)


def test_changes_up_to_the_snapshot_are_dropped_and_later_ones_pass_once():
    seen = PresenceFilter(Snapshot(users=[], count=0, version=10))
    assert not seen.accept(change(Change.JOIN, 1, 10))
    assert seen.accept(change(Change.JOIN, 1, 11))
    assert not seen.accept(change(Change.JOIN, 1, 11))  # the same, delivered twice


def test_an_older_change_of_a_user_arriving_late_is_dropped():
    seen = PresenceFilter(Snapshot(users=[], count=0, version=10))
    assert seen.accept(change(Change.LEAVE, 1, 13))
    assert not seen.accept(change(Change.JOIN, 1, 12))  # from a slower process
    assert seen.accept(change(Change.JOIN, 2, 12))  # another user: its own order


def test_a_change_travels_as_plain_values_and_comes_back_equal():
    change = PresenceChange(Change.LEAVE, S, 7, "alice", 42, "specific.x!y")
    event = change.event()
    assert event["type"] == "presence.change"
    assert json.loads(json.dumps(event)) == event  # msgpack/JSON safe
    assert PresenceChange.from_event(event) == change
    assert Resync(S).event() == {"type": "presence.resync", "stream": S}


def test_a_fresh_snapshot_replaces_the_view():
    seen = PresenceFilter(Snapshot(users=[], count=0, version=10))
    assert seen.accept(change(Change.JOIN, 1, 20))
    seen.reset(Snapshot(users=[], count=0, version=5))  # e.g. after a resync
    assert seen.accept(change(Change.JOIN, 1, 6))


@pytest.fixture(params=BACKENDS)
async def cluster(request):
    if request.param == "redis":
        request.applymarker(pytest.mark.services)
    cluster = Cluster(request.param)
    yield cluster
    await cluster.close()


async def churn(layer, process, user_id, rounds, rng):
    """One socket joining and leaving S, broadcasting what the registry decides."""
    socket_id = f"churn-{user_id}"
    await process.socket_open(socket_id, user_id=user_id, username="u", sid="s")
    for _ in range(rounds):
        for step in (process.stream_join, process.stream_leave):
            change = await step(socket_id, S)
            if change is not None:
                await layer.group_send(GROUP, change.event())
            await asyncio.sleep(rng.random() / 1000)
    if rng.random() < 0.5:  # some stay
        change = await process.stream_join(socket_id, S)
        if change is not None:
            await layer.group_send(GROUP, change.event())


async def subscriber(layer, process, socket_id, user_id):
    """The documented order: group, register, snapshot; then filtered changes."""
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    await process.socket_open(socket_id, user_id=user_id, username="w", sid="w")
    await process.stream_join(socket_id, S)
    snapshot = await process.snapshot(S)
    view = {user.id for user in snapshot.users}
    assert user_id in view  # the snapshot includes the subscriber
    return channel, PresenceFilter(snapshot), view


async def drain(layer, channel, seen, view, own_id, settle):
    applied = []
    while True:
        try:
            event = await asyncio.wait_for(layer.receive(channel), settle)
        except TimeoutError:
            return applied
        change = PresenceChange.from_event(event)
        if not seen.accept(change):
            continue
        assert change.user_id != own_id  # never told of its own subscribe
        if change.kind == Change.JOIN:
            assert change.user_id not in view, "a join told twice"
            view.add(change.user_id)
        else:
            assert change.user_id in view, "a leave of someone not there"
            view.discard(change.user_id)
        applied.append(change)


@pytest.mark.parametrize("seed", range(5))
async def test_a_subscriber_arriving_during_churn_ends_with_the_true_view(
    cluster, seed
):
    rng = random.Random(seed)
    layer = LocalChannelLayer(capacity=10_000)  # no drop: a lost event must be ours
    p1, p2 = await cluster.process(), await cluster.process()
    churners = [
        asyncio.create_task(churn(layer, (p1, p2)[n % 2], n + 1, 6, rng))
        for n in range(8)
    ]
    await asyncio.sleep(rng.random() / 200)  # arrive somewhere in the middle
    channel, seen, view = await subscriber(layer, p2, "watcher", 100)
    await asyncio.gather(*churners)
    await drain(layer, channel, seen, view, own_id=100, settle=0.2)
    final = await p1.snapshot(S)
    assert view == {user.id for user in final.users}
