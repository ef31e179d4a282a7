"""Property tests of presence delivery, from the registry to each watcher's view.

Sockets of two users, each on both of two processes, subscribe, unsubscribe and
close in any order; each process's outbox gathers what its registry decided
and sends at window ends that fall anywhere (a fake clock, windows ended by
hand); watchers arrive at any point, in the documented order (join the
presence group, register, read the snapshot), and receive the batches of the
two processes interleaved in any way that keeps each process's own order. At
the end every watcher's view must be the true set of users, reached by joins
and leaves that alternate per user, never one of its own subscribe.

This is what lets the outbox and the filter drop work (joins held a window,
leaves of visits nobody was shown skipped): any shortcut that loses a change
some watcher needs shows up here as a wrong final view.
"""

import asyncio
import random

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from realtime.presence.events import Change, batch_changes, batch_event
from realtime.presence.ordering import PresenceFilter
from realtime.presence.outbox import PresenceOutbox
from realtime.tests.presence import Cluster

BOUNDED = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

S = "room:a"
PROCESSES = 2
SOCKETS = 4  # socket n: user n // 2 + 1, on process n % 2 (each user on both)
WINDOW = 3600.0  # the fake clock's unit: no real timer ever fires in a test

# Socket steps weigh most: the interleavings that matter are a user's sockets
# on two processes coming and going between two ends of a window.
socket_step = st.tuples(
    st.sampled_from(["subscribe", "subscribe", "unsubscribe", "unsubscribe", "close"]),
    st.integers(0, SOCKETS - 1),
)
step = st.one_of(
    socket_step,
    socket_step,
    socket_step,
    st.tuples(st.just("tick"), st.sampled_from([0.5, 1.0])),
    st.tuples(st.just("window_end"), st.integers(0, PROCESSES - 1)),
    st.tuples(st.just("watch"), st.integers(0, PROCESSES - 1)),
    st.tuples(st.just("late"), st.integers(0, PROCESSES - 1)),
)

# Kept as examples, each the shortest way to break one rule of the outbox's
# marks (realtime/presence/outbox.py): a leave whose join went out in an
# earlier window; a visit a later snapshot showed, then a second visit in the
# same window; a leave that ends a presence another process began; a newer
# leave when an older one was queued after the join between.
JOIN_SENT_BEFORE = [
    ("subscribe", 0),
    ("tick", 1.0),
    ("window_end", 0),
    ("watch", 1),
    ("unsubscribe", 0),
]
SEEN_THEN_BACK = [
    ("subscribe", 0),
    ("watch", 1),
    ("unsubscribe", 0),
    ("subscribe", 0),
    ("unsubscribe", 0),
]
TWO_PROCESS_VISIT = [
    ("watch", 0),
    ("subscribe", 0),
    ("subscribe", 1),
    ("unsubscribe", 0),
    ("unsubscribe", 1),
    ("subscribe", 1),
    ("subscribe", 0),
    ("unsubscribe", 1),
    ("unsubscribe", 0),
]
LEAVE_QUEUED_LATE = [
    ("subscribe", 0),
    ("tick", 1.0),
    ("window_end", 0),
    ("watch", 1),
    ("late", 0),
    ("unsubscribe", 0),
    ("subscribe", 0),
    ("unsubscribe", 0),
]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Process:
    """A registry and its outbox; what the outbox sends lands in `sent`, in order."""

    def __init__(self, registry, clock: FakeClock) -> None:
        self.registry = registry
        self.sent: list[dict] = []
        self.outbox = PresenceOutbox(
            window=WINDOW,
            resync_over=10_000,
            send_changes=self._send_changes,
            send_resync=self._send_resync,
        )
        self.outbox.clock = clock
        self.hold_next = False  # the next change is queued after the one after it
        self.held: list = []

    async def _send_changes(self, stream, changes) -> None:
        self.sent.append(batch_event(stream, changes, ["-"] * len(changes)))

    async def _send_resync(self, resync) -> None:
        raise AssertionError("no resync expected")

    async def decided(self, changes) -> None:
        """Queue what the registry decided (a consumer's `presence_broadcast`).

        After a `late` step the next change is held, and queued right after
        the one decided next (two sockets' tasks of one process can do that).
        """
        changes = [change for change in changes if change is not None]
        if self.hold_next and changes:
            self.hold_next, self.held = False, self.held + changes
            return
        self.release(changes)

    def release(self, changes=()) -> None:
        for change in [*changes, *self.held]:
            self.outbox.add(change)
        self.held = []


class Watcher:
    """A socket watching S: its snapshot's view, then what the filter passes."""

    def __init__(self, socket_id: str, user_id: int, snapshot, since: list[int]):
        self.socket_id, self.user_id = socket_id, user_id
        self.filter = PresenceFilter(snapshot)
        self.view = {user.id for user in snapshot.users}
        self.since = since  # per process: batches sent before it joined the group

    def receive(self, event: dict) -> None:
        for change, _ in self.filter.told(batch_changes(event), self.socket_id):
            assert change.user_id != self.user_id, "told of its own subscribe"
            if change.kind is Change.JOIN:
                assert change.user_id not in self.view, "a join told twice"
                self.view.add(change.user_id)
            else:
                assert change.user_id in self.view, "a leave of someone not shown"
                self.view.discard(change.user_id)


async def run(backend: str, steps, seed: int) -> None:
    cluster, clock = Cluster(backend), FakeClock()
    try:
        processes = [
            Process(await cluster.process(start=False), clock) for _ in range(PROCESSES)
        ]
        watchers: list[Watcher] = []
        opened: set[int] = set()
        for kind, arg in steps:
            if kind == "tick":
                clock.now += arg * WINDOW
            elif kind == "window_end":
                await processes[arg].outbox.send_due()
            elif kind == "late":
                processes[arg].hold_next = True
            elif kind == "watch":
                watchers.append(await watch(processes, arg, len(watchers)))
            else:
                await act(processes[arg % PROCESSES], opened, kind, arg)
        for process in processes:
            process.release()
            await process.outbox.flush()
        truth = {user.id for user in (await processes[0].registry.snapshot(S)).users}
        rng = random.Random(seed)
        for watcher in watchers:
            for event in interleaved(processes, watcher.since, rng):
                watcher.receive(event)
            assert watcher.view == truth
    finally:
        await cluster.close()


async def act(process: Process, opened: set[int], op: str, socket: int) -> None:
    """One socket's subscribe, unsubscribe or close, as the consumer does it."""
    registry, name, user = process.registry, f"sock{socket}", socket // 2 + 1
    if op == "close":
        opened.discard(socket)
        await process.decided(await registry.socket_close(name))
        return
    if socket not in opened:
        opened.add(socket)
        await registry.socket_open(name, user_id=user, username=f"u{user}", sid="s")
    step = registry.stream_join if op == "subscribe" else registry.stream_leave
    await process.decided([await step(name, S)])


async def watch(processes: list[Process], on: int, index: int) -> Watcher:
    """The documented order: group joined (batches from now on), register, snapshot."""
    since = [len(process.sent) for process in processes]
    process, socket_id, user = processes[on], f"watcher{index}", 100 + index
    registry = process.registry
    await registry.socket_open(socket_id, user_id=user, username="w", sid="w")
    await process.decided([await registry.stream_join(socket_id, S)])
    return Watcher(socket_id, user, await registry.snapshot(S), since)


def interleaved(processes: list[Process], since: list[int], rng: random.Random):
    """Both processes' batches from `since` on, each process's in its order."""
    queues = [list(p.sent[start:]) for p, start in zip(processes, since, strict=True)]
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        yield queue.pop(0)


@BOUNDED
@given(steps=st.lists(step, max_size=60), seed=st.integers(0, 2**16))
@example(steps=JOIN_SENT_BEFORE, seed=0)
@example(steps=SEEN_THEN_BACK, seed=0)
@example(steps=TWO_PROCESS_VISIT, seed=0)
@example(steps=LEAVE_QUEUED_LATE, seed=0)
def test_every_watcher_ends_with_the_true_view(backend, steps, seed):
    asyncio.run(run(backend, steps, seed))
