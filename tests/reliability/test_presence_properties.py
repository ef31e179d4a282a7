"""Property tests of presence counting (realtime/presence): any interleaving of
subscribe, unsubscribe and disconnect over several sockets and processes ends
with the right set of users and the right join/leave sequence.

Compared with a model a few lines long. Each example builds its own
registries (and Redis keys) and runs in its own event loop.
"""

import asyncio
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime.presence.events import Change, PresenceChange
from realtime.tests.presence import Cluster

BOUNDED = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

PROCESSES = 2
SOCKETS = 6  # socket n belongs to user n % 3 + 1, on process n % PROCESSES
STREAMS = ["room:a", "room:b"]

operations = st.lists(
    st.tuples(
        st.sampled_from(["subscribe", "unsubscribe", "close"]),
        st.integers(0, SOCKETS - 1),
        st.sampled_from(STREAMS),
    ),
    max_size=40,
)


def user_of(socket: int) -> int:
    return socket % 3 + 1


class Model:
    """Who is on which stream, by counting sockets: obviously right."""

    def __init__(self) -> None:
        self.on: set[tuple[int, str]] = set()  # (socket, stream)
        self.open: set[int] = set()

    def users(self, stream: str) -> Counter:
        return Counter(user_of(s) for s, st_ in self.on if st_ == stream)

    def apply(self, op: str, socket: int, stream: str) -> list[tuple]:
        """The changes this operation must cause, as (kind, stream, user)."""
        if op == "close":
            left = sorted(st_ for s, st_ in self.on if s == socket)
            changes = []
            for name in left:
                changes += self.apply("unsubscribe", socket, name)
            self.open.discard(socket)
            return changes
        self.open.add(socket)
        before = self.users(stream)[user_of(socket)]
        if op == "subscribe":
            self.on.add((socket, stream))
        else:
            self.on.discard((socket, stream))
        after = self.users(stream)[user_of(socket)]
        if before == 0 and after == 1:
            return [(Change.JOIN, stream, user_of(socket))]
        if before == 1 and after == 0:
            return [(Change.LEAVE, stream, user_of(socket))]
        return []


def described(changes: list[PresenceChange | None]) -> list[tuple]:
    return [(c.kind, c.stream, c.user_id) for c in changes if c is not None]


async def apply(registry, opened: set, op: str, socket: int, stream: str) -> list:
    name = f"sock{socket}"
    if op == "close":
        opened.discard(socket)
        return await registry.socket_close(name)
    if socket not in opened:
        opened.add(socket)
        await registry.socket_open(
            name, user_id=user_of(socket), username=f"u{user_of(socket)}", sid="s"
        )
    if op == "subscribe":
        return [await registry.stream_join(name, stream)]
    return [await registry.stream_leave(name, stream)]


async def final_state_matches(registries, model) -> None:
    for stream in STREAMS:
        for registry in registries:
            snapshot = await registry.snapshot(stream)
            got = {u.id: u.connections for u in snapshot.users}
            assert got == dict(model.users(stream)), stream
    for user in (1, 2, 3):
        expected = sum(1 for s in model.open if user_of(s) == user)
        assert (await registries[0].user_connections(user)).connections == expected


async def run_in_sequence(backend: str, ops) -> None:
    cluster = Cluster(backend)
    try:
        registries = [await cluster.process(start=False) for _ in range(PROCESSES)]
        model, opened = Model(), set()
        for op, socket, stream in ops:
            got = await apply(
                registries[socket % PROCESSES], opened, op, socket, stream
            )
            assert described(got) == model.apply(op, socket, stream), (op, socket)
        await final_state_matches(registries, model)
    finally:
        await cluster.close()


async def run_concurrently(backend: str, ops) -> None:
    """Each socket's operations in order (as a consumer does), sockets at once."""
    cluster = Cluster(backend)
    try:
        registries = [await cluster.process(start=False) for _ in range(PROCESSES)]
        model, opened, changes = Model(), set(), []
        for op, socket, stream in ops:
            model.apply(op, socket, stream)

        async def one_socket(socket: int) -> None:
            for op, s, stream in ops:
                if s == socket:
                    registry = registries[socket % PROCESSES]
                    changes.extend(await apply(registry, opened, op, socket, stream))
                    await asyncio.sleep(0)

        await asyncio.gather(*(one_socket(s) for s in range(SOCKETS)))
        await final_state_matches(registries, model)
        # Per (stream, user), in version order: join, leave, join, … ending
        # with a join exactly when the user is still there.
        ordered = sorted((c for c in changes if c is not None), key=lambda c: c.version)
        for stream in STREAMS:
            for user in (1, 2, 3):
                kinds = [
                    c.kind for c in ordered if (c.stream, c.user_id) == (stream, user)
                ]
                assert all(k == Change.JOIN for k in kinds[::2])
                assert all(k == Change.LEAVE for k in kinds[1::2])
                assert (len(kinds) % 2 == 1) == (model.users(stream)[user] > 0)
    finally:
        await cluster.close()


@BOUNDED
@given(ops=operations)
def test_any_sequence_gives_the_model_changes_and_final_state(backend, ops):
    asyncio.run(run_in_sequence(backend, ops))


@BOUNDED
@given(ops=operations)
def test_sockets_acting_at_once_alternate_join_and_leave_per_user(backend, ops):
    asyncio.run(run_concurrently(backend, ops))
