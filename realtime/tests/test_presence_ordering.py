"""Snapshot, then changes: a socket that subscribes while others join and
leave ends with the right view, never told twice, never told of itself."""

import asyncio
import json
import random
from dataclasses import replace

import pytest

from realtime.channels_overrides import LocalChannelLayer
from realtime.presence.events import (
    Change,
    PresenceChange,
    Resync,
    batch_changes,
    batch_event,
)
from realtime.presence.ordering import FOLD_EVERY, PresenceFilter
from realtime.presence.outbox import PresenceOutbox
from realtime.presence.store import snapshot_build, snapshot_of
from realtime.presence_frames import snapshot_frame

S = "room:lobby"
TIMEOUT = 5
GROUP = "presence.lobby"


def change(kind, user_id, version, socket_id=None):
    return PresenceChange(kind, S, user_id, f"user{user_id}", version, socket_id)


def snapshot(version, *user_ids, truncated=False):
    rows = [(uid, f"user{uid}", 1) for uid in sorted(user_ids)]
    listed = snapshot_of(rows, version=version, limit=len(rows))
    return replace(listed, truncated=truncated)


def test_a_snapshot_finds_a_user_by_his_id_and_no_other():
    """`Snapshot.lists` searches the frame's text: an id that begins another
    (1, 12, 123) is not mistaken for it, nor a name that reads like a part."""
    rows = [(1, 'x{"id":5,"username":"y"}', 1), (12, '{"id":6,', 2), (123, "z", 1)]
    listed = snapshot_of(rows, version=1, limit=3)
    assert [uid for uid in range(200) if listed.lists(uid)] == [1, 12, 123]
    assert replace(listed, ids=None).listed_ids() == [1, 12, 123]


@pytest.mark.parametrize("truncated", [False, True])
def test_a_snapshot_with_its_ids_and_one_without_answer_alike(truncated):
    """The memory store gives a snapshot its ids, Redis does not: a filter
    searches the text for a few lookups, then reads the ids out of it; every
    answer is the same as with the ids."""
    rng = random.Random(7)
    listed = snapshot(10, *rng.sample(range(1, 400), 60), truncated=truncated)
    with_ids, without = (
        PresenceFilter(listed),
        PresenceFilter(replace(listed, ids=None)),
    )
    for version in range(11, 400):  # far more lookups than searches
        kind = rng.choice([Change.JOIN, Change.LEAVE])
        seen = change(kind, rng.randrange(0, 401), version)
        assert with_ids.accept(seen) == without.accept(seen)
    assert without._ids == listed.ids  # it did read them out


@pytest.mark.parametrize("truncated", [False, True])
def test_a_filter_knows_whom_its_snapshot_showed(truncated):
    """A leave of someone the snapshot did not list is no news to it, unless
    the snapshot was cut: past its end, anyone may have been there."""
    listed = snapshot(10, *range(1, 400, 3), truncated=truncated)
    seen = PresenceFilter(listed)
    for version, user_id in enumerate(range(402), start=11):
        shown = listed.lists(user_id)
        assert shown == (user_id % 3 == 1 and user_id < 400)
        news = seen.accept(change(Change.LEAVE, user_id, version))
        assert news == (shown or truncated)


def test_changes_up_to_the_snapshot_are_dropped_and_later_ones_pass_once():
    seen = PresenceFilter(snapshot(10))
    assert not seen.accept(change(Change.JOIN, 1, 10))
    assert seen.accept(change(Change.JOIN, 1, 11))
    assert not seen.accept(change(Change.JOIN, 1, 11))  # the same, delivered twice


def test_an_older_change_of_a_user_arriving_late_is_dropped():
    seen = PresenceFilter(snapshot(10, 1))
    assert seen.accept(change(Change.LEAVE, 1, 13))
    assert not seen.accept(change(Change.JOIN, 1, 12))  # from a slower process
    assert seen.accept(change(Change.JOIN, 2, 12))  # another user: its own order


def test_a_change_that_alters_nothing_the_client_was_told_is_not_passed_on():
    seen = PresenceFilter(snapshot(10, 1))
    assert not seen.accept(change(Change.JOIN, 1, 11))  # already shown
    assert not seen.accept(change(Change.LEAVE, 2, 12))  # never shown
    assert seen.accept(change(Change.LEAVE, 1, 14))
    assert not seen.accept(change(Change.LEAVE, 1, 15))  # gone already


def test_a_truncated_snapshot_tells_changes_of_users_it_did_not_list():
    seen = PresenceFilter(snapshot(10, 1, truncated=True))
    assert not seen.accept(change(Change.JOIN, 1, 11))  # listed: known
    assert seen.accept(change(Change.LEAVE, 2, 12))  # unlisted: may be there


def test_a_batch_travels_as_plain_values_and_comes_back_equal():
    changes = [
        change(Change.JOIN, 7, 41, "specific.x!y"),
        PresenceChange(Change.LEAVE, S, 8, 'bob|"', 42),
        PresenceChange(Change.LEAVE, S, 9, "carol", 43, hidden_since=40),
    ]
    texts = ["join-frame", "leave-frame", "hidden-leave-frame"]
    event = batch_event(S, changes, texts)
    assert event["type"] == "presence.changes"
    assert json.loads(json.dumps(event)) == event  # msgpack/JSON safe
    batch = batch_changes(event)
    assert batch.changes == tuple(zip(changes, texts, strict=True))
    assert batch.for_snapshot(40) == batch.changes
    assert batch.for_snapshot(39) == batch.changes[:2]  # never shown carol's visit
    assert "hidden" not in batch_event(S, changes[:2], texts[:2])
    assert Resync(S).event() == {"type": "presence.resync", "stream": S}


def test_a_leave_of_a_visit_the_snapshot_never_showed_is_skipped_unread():
    # Two watchers, snapshots before and during carol's visit (joined at 40).
    before, during = PresenceFilter(snapshot(39, 1)), PresenceFilter(snapshot(40, 1, 9))
    leave = PresenceChange(Change.LEAVE, S, 9, "carol", 43, hidden_since=40)
    batch = batch_changes(batch_event(S, [leave], ["leave-frame"]))
    assert list(before.told(batch, "w1")) == []
    assert 9 not in before._last  # not even looked at
    assert list(during.told(batch, "w2")) == [(leave, "leave-frame")]
    assert list(during.told(batch, "w2")) == []  # once


def test_a_fresh_snapshot_replaces_the_view():
    seen = PresenceFilter(snapshot(10))
    assert seen.accept(change(Change.JOIN, 1, 20))
    seen.reset(snapshot(5))  # e.g. after a resync
    assert seen.newest == 5
    assert seen.accept(change(Change.JOIN, 1, 6))


async def test_the_outbox_sends_each_users_newest_change_once_per_window():
    sent, resyncs, first_sent = [], [], asyncio.Event()

    async def send_changes(stream, changes):
        sent.append((stream, [(c.kind, c.user_id, c.version) for c in changes]))
        first_sent.set()

    async def send_resync(resync):
        resyncs.append(resync.stream)

    outbox = PresenceOutbox(
        window=0.01, resync_over=2, send_changes=send_changes, send_resync=send_resync
    )
    outbox.add(change(Change.JOIN, 9, 5))
    await asyncio.wait_for(first_sent.wait(), TIMEOUT)  # when the window ends
    assert sent == [(S, [(Change.JOIN, 9, 5)])]
    outbox.window = 60
    for event in (
        change(Change.JOIN, 1, 11),
        change(Change.JOIN, 2, 13),
        change(Change.LEAVE, 1, 12),
        change(Change.JOIN, 1, 10),  # decided earlier, arrived late: older
    ):
        outbox.add(event)
    await asyncio.sleep(0.05)  # no event to await: that nothing is sent is the point
    assert len(sent) == 1  # the window is a minute
    await outbox.flush()
    assert sent[1:] == [(S, [(Change.LEAVE, 1, 12), (Change.JOIN, 2, 13)])]
    for user_id in (1, 2, 3):
        outbox.add(change(Change.JOIN, user_id, 20 + user_id))
    await outbox.flush()
    assert resyncs == [S]  # three users over `resync_over`: one snapshot instead
    assert len(sent) == 2


async def test_a_join_goes_out_once_it_has_stood_a_whole_window():
    sent = []

    async def send_changes(stream, changes):
        sent.append([(c.kind, c.user_id) for c in changes])

    async def send_resync(resync):
        raise AssertionError("no resync expected")

    outbox = PresenceOutbox(
        window=60, resync_over=10, send_changes=send_changes, send_resync=send_resync
    )
    clock = [1000.0]
    outbox.clock = lambda: clock[0]
    outbox.add(change(Change.JOIN, 1, 10))  # opens the window
    clock[0] += 59
    outbox.add(change(Change.JOIN, 2, 11))  # a second before the window's end
    outbox.add(change(Change.JOIN, 3, 12))
    clock[0] += 1
    await outbox.send_due()
    assert sent == [[(Change.JOIN, 1)]]  # 2 and 3 have stood a second so far
    outbox.add(change(Change.LEAVE, 2, 13))  # a visit of a second: never announced
    clock[0] += 60
    await outbox.send_due()
    # 3 has stood a window; 2's leave still goes, for whoever saw him in a snapshot.
    assert sent[1:] == [[(Change.JOIN, 3), (Change.LEAVE, 2)]]
    await outbox.flush()
    assert len(sent) == 2


def leave(user_id, version, joined):
    return PresenceChange(
        Change.LEAVE, S, user_id, f"user{user_id}", version, None, joined
    )


async def test_a_leave_is_marked_hidden_only_when_its_whole_chain_went_unsent():
    sent = []

    async def send_changes(stream, changes):
        sent.extend((c.kind, c.user_id, c.hidden_since) for c in changes)

    outbox = PresenceOutbox(
        window=60, resync_over=10, send_changes=send_changes, send_resync=None
    )
    # 1: a visit, then another (a page reload): marked since the first join.
    for event in (
        change(Change.JOIN, 1, 10),
        leave(1, 11, joined=10),
        change(Change.JOIN, 1, 12),
        leave(1, 13, joined=12),
    ):
        outbox.add(event)
    # 2: the presence this leave ends began with another process's join (14).
    outbox.add(change(Change.JOIN, 2, 13))
    outbox.add(leave(2, 15, joined=14))
    # 3: a leave decided before the join it was queued after, then the next.
    outbox.add(change(Change.JOIN, 3, 17))
    outbox.add(leave(3, 16, joined=5))
    outbox.add(leave(3, 18, joined=17))
    # 4: his join went out in an earlier window.
    outbox.add(leave(4, 19, joined=9))
    await outbox.flush()
    assert sorted(sent) == [
        (Change.LEAVE, 1, 10),
        (Change.LEAVE, 2, None),
        (Change.LEAVE, 3, None),
        (Change.LEAVE, 4, None),
    ]
    sent.clear()
    outbox.add(change(Change.JOIN, 5, 20))
    await outbox.flush()
    assert sent == [(Change.JOIN, 5, None)]  # joins carry no mark


async def test_a_shown_user_back_within_the_window_is_sent_as_a_leave_then_a_join():
    sent = []

    async def send_changes(stream, changes):
        sent.append([(c.kind, c.user_id) for c in changes])

    outbox = PresenceOutbox(
        window=60, resync_over=10, send_changes=send_changes, send_resync=None
    )
    clock = [1000.0]
    outbox.clock = lambda: clock[0]
    outbox.add(leave(1, 20, joined=9))  # his join went out in an earlier window
    clock[0] += 30
    outbox.add(change(Change.JOIN, 1, 21))  # back at once (a page reload)
    clock[0] += 30
    await outbox.send_due()
    assert sent == [[(Change.LEAVE, 1)]]  # the leave now, the join once it stood
    clock[0] += 60
    await outbox.send_due()
    assert sent[1:] == [[(Change.JOIN, 1)]]
    # Back at once and there a whole window: both in one batch, leave first.
    outbox.add(leave(1, 22, joined=21))
    outbox.add(change(Change.JOIN, 1, 23))
    clock[0] += 60
    await outbox.send_due()
    assert sent[2:] == [[(Change.LEAVE, 1), (Change.JOIN, 1)]]
    # Gone, back and gone again within the window: one leave.
    outbox.add(leave(1, 24, joined=23))
    outbox.add(change(Change.JOIN, 1, 25))
    outbox.add(leave(1, 26, joined=25))
    await outbox.flush()
    assert sent[3:] == [[(Change.LEAVE, 1)]]


def outbox_to(layer, window):
    """A process's outbox, sending its batches to GROUP as the broadcast does."""

    async def send_changes(stream, changes):
        await layer.group_send(
            GROUP, batch_event(stream, changes, ["-"] * len(changes))
        )

    async def send_resync(resync):
        raise AssertionError("no resync expected")

    return PresenceOutbox(
        window=window,
        resync_over=10_000,
        send_changes=send_changes,
        send_resync=send_resync,
    )


async def churn(outbox, process, user_id, rounds, rng):
    """One socket joining and leaving S, queueing what the registry decides."""
    socket_id = f"churn-{user_id}"
    await process.socket_open(socket_id, user_id=user_id, username="u", sid="s")
    for _ in range(rounds):
        for step in (process.stream_join, process.stream_leave):
            change = await step(socket_id, S)
            if change is not None:
                outbox.add(change)
            await asyncio.sleep(rng.random() / 1000)
    if rng.random() < 0.5:  # some stay
        change = await process.stream_join(socket_id, S)
        if change is not None:
            outbox.add(change)


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
        for change, _ in seen.told(batch_changes(event), None):
            assert change.user_id != own_id  # never told of its own subscribe
            if change.kind == Change.JOIN:
                assert change.user_id not in view, "a join told twice"
                view.add(change.user_id)
            else:
                assert change.user_id in view, "a leave of someone not there"
                view.discard(change.user_id)
            applied.append(change)


@pytest.mark.parametrize("seed", range(12))
async def test_a_subscriber_arriving_during_churn_ends_with_the_true_view(
    cluster, seed
):
    rng = random.Random(seed)
    layer = LocalChannelLayer(capacity=10_000)  # no drop: a lost event must be ours
    p1, p2 = await cluster.process(), await cluster.process()
    # Windows from "send at once" to several churn steps: runs coalesce or not.
    outboxes = [outbox_to(layer, rng.choice((0, 0.001, 0.004))) for _ in (p1, p2)]
    churners = [
        asyncio.create_task(churn(outboxes[n % 2], (p1, p2)[n % 2], n + 1, 6, rng))
        for n in range(8)
    ]
    await asyncio.sleep(rng.random() / 200)  # arrive somewhere in the middle
    channel, seen, view = await subscriber(layer, p2, "watcher", 100)
    await asyncio.gather(*churners)
    await asyncio.gather(*(outbox.flush() for outbox in outboxes))
    await drain(layer, channel, seen, view, own_id=100, settle=0.2)
    final = await p1.snapshot(S)
    assert view == {user.id for user in final.users}


def test_a_long_watch_keeps_what_differs_from_its_snapshot_not_every_visitor():
    seen = PresenceFilter(snapshot(10, 1, 2))
    minute = 60 * 1_000_000
    version = 10
    for visitor in range(100, 100 + 3 * FOLD_EVERY):  # each comes and goes
        version += minute // 100
        assert seen.accept(change(Change.JOIN, visitor, version))
        version += minute // 100
        assert seen.accept(change(Change.LEAVE, visitor, version))
    version += 1
    assert seen.accept(change(Change.LEAVE, 1, version))  # a snapshot user left
    for _ in range(FOLD_EVERY):  # time passes; others churn
        version += minute // 10
        seen.accept(change(Change.JOIN, 7, version))
        version += minute // 10
        seen.accept(change(Change.LEAVE, 7, version))
    assert len(seen._last) + len(seen._folded) < 50  # not 768 visitors
    assert not seen.accept(change(Change.LEAVE, 1, version + 1))  # still gone
    assert seen.accept(change(Change.JOIN, 1, version + 2))
    assert not seen.accept(change(Change.JOIN, 2, version + 3))  # still there
    assert not seen.accept(change(Change.JOIN, 100, 20))  # far too old: dropped


def test_a_snapshot_frame_says_what_its_payload_says_rendered_in_parts():
    counts = {3: 2, 1: 1, 2: 1}
    names = {1: 'quote " back \\ slash', 2: "zoë ☃", 3: "c"}
    for limit in (2, 10):  # cut, whole
        snap = snapshot_build(counts, names, version=7, limit=limit)
        expected = {"type": "presence", "stream": S, **snap.payload()}
        assert json.loads(snapshot_frame(S, snap)) == expected
        assert expected["count"] == 3
        assert ("truncated" in expected) is (limit == 2)
    assert [u["id"] for u in expected["users"]] == [1, 2, 3]
