"""Presence as users and rights change under sockets on two processes (§4.4).

Two `authsocket.serve` processes share PostgreSQL and Redis. Each test makes
users and a room of its own (`manage.py mint_tokens`, `manage.py shell`), so
what other tests left in the shared registry never meets it. A user
deactivated, deleted or removed from a room while his sockets are on both
processes leaves once, heard on every process; so does one whose two
sockets close at once on the two; and a killed process's users leave once,
though both survivors notice it.
"""

import asyncio
import re
import signal
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import pytest
import redis

from tests.servers import manage

from .client import (
    close_code,
    connect,
    http,
    recv_json,
    recv_until,
    send_json,
    watch,
)
from .conftest import start_servers
from .processes import ServerProcess

pytestmark = [pytest.mark.services, pytest.mark.e2e, pytest.mark.timeout(120)]

PRESENCE_TTL = 2
# Seconds of silence that mean "nothing more comes": a window is 200 ms, and
# a change reaches every process within one second.
QUIET = 1.5


@pytest.fixture(scope="module")
def env(deploy_env):
    return {**deploy_env, "AUTHSOCKET_PRESENCE_TTL": str(PRESENCE_TTL)}


@pytest.fixture(scope="module")
def pair(env, log_dir):
    servers = start_servers(env, log_dir, "presence-users-a", "presence-users-b")
    try:
        yield tuple(servers)
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
async def third(env, log_dir):
    """A process C that a test may kill."""
    server = ServerProcess(f"presence-users-c-{uuid.uuid4().hex[:6]}", env, log_dir)
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


@dataclass
class Cast:
    """Users of one test (tokens, in order) and its room, a stream name."""

    stream: str
    slug: str
    names: list[str]
    tokens: list[str]


async def shell(env: dict, code: str) -> None:
    await asyncio.to_thread(manage, env, "shell", "-c", code)


async def cast(env: dict, users: int, *, public: bool, members: int) -> Cast:
    """`users` new users, a new room; the first `members` of them its members."""
    tag = uuid.uuid4().hex[:8]
    prefix = f"pu{tag}-"
    output = await asyncio.to_thread(
        manage, env, "mint_tokens", "--users", str(users), "--prefix", prefix
    )
    names = [f"{prefix}{n}" for n in range(users)]
    slug = f"pu-{tag}"
    await shell(
        env,
        "from accounts.models import User; from realtime.models import Room, Membership;"
        f"room = Room.objects.create(slug={slug!r}, title={slug!r}, public={public});"
        "[Membership.objects.create(user=User.objects.get(username=name), room=room)"
        f" for name in {names[:members]!r}]",
    )
    return Cast(f"room:{slug}", slug, names, output.split())


async def opened(server, token: str):
    """A socket on `server`, and its user's id."""
    socket, welcome = await connect(server.ws, token=token)
    return socket, welcome["user"]["id"]


async def subscribed(socket, stream: str) -> None:
    await send_json(socket, {"type": "subscribe", "stream": stream})
    await recv_until(
        socket, lambda f: f["type"] == "subscribed" and f["stream"] == stream
    )


def change(kind: str, user_id: int):
    return lambda f: f["type"] == f"presence.{kind}" and f["user"]["id"] == user_id


async def frames_within(socket, seconds: float) -> list[dict]:
    """Every frame that arrives in the next `seconds`."""
    frames = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (remaining := deadline - loop.time()) > 0:
        try:
            frames.append(await recv_json(socket, remaining))
        except TimeoutError:
            break
    return frames


async def one_leave_each(watchers, user_id: int, timeout: float = 5) -> None:
    """Each watcher hears the user's leave, then nothing more of him."""
    for watcher in watchers:
        await recv_until(watcher, change("leave", user_id), timeout=timeout)
    for watcher in watchers:
        later = await frames_within(watcher, QUIET)
        assert not [f for f in later if f.get("user", {}).get("id") == user_id], later


async def closed_all(sockets) -> None:
    for socket in sockets:
        await socket.close()


USER_CHANGES = {
    "deactivated": "user.is_active = False; user.save()",
    "deleted": "user.delete()",
}


@pytest.mark.parametrize("how", list(USER_CHANGES))
async def test_a_user_deactivated_or_deleted_on_two_processes_leaves_once(
    pair, env, how
):
    """His sockets close 4403 on both processes (deleted, his private room is
    also taken from him first): one leave, heard on both."""
    a, b = pair
    people = await cast(env, 2, public=False, members=2)
    watchers, victims = [], []
    try:
        for server in (a, b):
            watchers.append((await opened(server, people.tokens[0]))[0])
        for server in (a, b):
            socket, victim = await opened(server, people.tokens[1])
            victims.append(socket)
        for watcher in watchers:
            await watch(watcher, people.stream)
        for socket in victims:
            await subscribed(socket, people.stream)
        for watcher in watchers:
            await recv_until(watcher, change("join", victim), timeout=5)
        await shell(
            env,
            "from accounts.models import User;"
            f"user = User.objects.get(username={people.names[1]!r}); "
            + USER_CHANGES[how],
        )
        for socket in victims:
            assert await close_code(socket, timeout=10) == 4403
        await one_leave_each(watchers, victim)
    finally:
        await closed_all(watchers + victims)


async def test_two_sockets_of_a_user_closing_at_once_on_two_processes_leave_once(
    pair, env
):
    a, b = pair
    people = await cast(env, 2, public=True, members=0)
    watchers = []
    try:
        for server in (a, b):
            watchers.append((await opened(server, people.tokens[0]))[0])
            await watch(watchers[-1], people.stream)
        for _ in range(3):
            sockets = []
            for server in (a, b):
                socket, user_id = await opened(server, people.tokens[1])
                sockets.append(socket)
                await subscribed(socket, people.stream)
            for watcher in watchers:
                await recv_until(watcher, change("join", user_id), timeout=5)
            await asyncio.gather(*(socket.close() for socket in sockets))
            await one_leave_each(watchers, user_id)
    finally:
        await closed_all(watchers)


async def test_a_member_removed_from_a_private_room_leaves_and_hears_no_more(pair, env):
    """He watched the room from B: `unsubscribed` with reason `forbidden`,
    his leave to the watcher on A, and after it no presence frame of the
    room, though others come and the room's presence is sent again."""
    a, b = pair
    people = await cast(env, 3, public=False, members=3)
    watcher, _ = await opened(a, people.tokens[0])
    removed, removed_id = await opened(b, people.tokens[1])
    other, other_id = await opened(a, people.tokens[2])
    try:
        await watch(watcher, people.stream)
        await watch(removed, people.stream)
        await recv_until(watcher, change("join", removed_id), timeout=5)
        await shell(
            env,
            "from realtime.models import Membership;"
            f"Membership.objects.get(user__username={people.names[1]!r},"
            f" room__slug={people.slug!r}).delete()",
        )
        assert await recv_until(
            removed, lambda f: f["type"] == "unsubscribed", timeout=5
        ) == {"type": "unsubscribed", "stream": people.stream, "reason": "forbidden"}
        await recv_until(watcher, change("leave", removed_id), timeout=5)
        await subscribed(other, people.stream)
        await recv_until(watcher, change("join", other_id), timeout=5)
        after = await frames_within(removed, QUIET)
        assert not [f for f in after if f["type"].startswith("presence")], after
    finally:
        await closed_all([watcher, removed, other])


def process_holding(url: str, user_id: int) -> str:
    """The registry id of the process that holds a socket of the user."""
    with redis.Redis.from_url(url, decode_responses=True) as client:
        for pid in client.smembers("authsocket:procs"):
            for entry in client.hvals(f"authsocket:sock:{pid}"):
                if entry.startswith(f"{user_id}|"):
                    return pid
    raise AssertionError(f"no process holds a socket of user {user_id}")


async def test_a_killed_process_is_reaped_once_though_both_survivors_notice(
    pair, third, env
):
    people = await cast(env, 2, public=True, members=0)
    watchers = []
    victim_socket, victim = await opened(third, people.tokens[1])
    try:
        for server in pair:
            watchers.append((await opened(server, people.tokens[0]))[0])
            await watch(watchers[-1], people.stream)
        await subscribed(victim_socket, people.stream)
        for watcher in watchers:
            await recv_until(watcher, change("join", victim), timeout=5)
        dead = process_holding(env["REDIS_URL"], victim)
        marks = [len(server.lines) for server in pair]
        third.signal(signal.SIGKILL)
        await one_leave_each(watchers, victim, timeout=PRESENCE_TTL + 5)
        reaped = re.compile(rf"removed \d+ socket\(s\) of dead process {dead}\b")
        lines = [
            line
            for server, mark in zip(pair, marks, strict=True)
            for line in server.lines[mark:]
            if reaped.search(line)
        ]
        assert len(lines) == 1, lines
    finally:
        await closed_all(watchers)
        await victim_socket.close()


def ids(snapshot: dict) -> list[int]:
    return [user["id"] for user in snapshot["users"]]


async def presence_of(server, token: str, stream: str) -> list[int]:
    """The ids `GET /api/streams/<stream>/presence` lists on `server`."""
    status, body = await http(
        "GET", f"{server.http}/api/streams/{stream}/presence", token=token
    )
    assert status == 200, body
    return ids(body)


async def test_a_stalled_process_taken_for_dead_is_counted_right_once_back(
    pair, third, env
):
    """SIGSTOP past the TTL: its user's leave, then, back, a fresh snapshot
    that lists him again (a subscribe he sent meanwhile counts once), and
    his leave when he goes, with nothing of him left behind."""
    people = await cast(env, 2, public=True, members=0)
    elsewhere = (await cast(env, 1, public=True, members=0)).stream
    token = people.tokens[0]
    watcher, watcher_id = await opened(pair[0], token)
    victim_socket, victim = await opened(third, people.tokens[1])
    try:
        await watch(watcher, people.stream)
        await subscribed(victim_socket, people.stream)
        await recv_until(watcher, change("join", victim), timeout=5)
        third.signal(signal.SIGSTOP)
        try:
            await recv_until(watcher, change("leave", victim), PRESENCE_TTL + 5)
            await send_json(victim_socket, {"type": "subscribe", "stream": elsewhere})
        finally:
            third.signal(signal.SIGCONT)
        back = await recv_until(
            watcher, lambda f: f["type"] == "presence" and victim in ids(f)
        )
        assert (back["stream"], back["count"]) == (people.stream, 2)
        await recv_until(victim_socket, lambda f: f["type"] == "subscribed")
        assert await presence_of(pair[1], token, people.stream) == sorted(
            [watcher_id, victim]
        )
        assert await presence_of(pair[1], token, elsewhere) == [victim]
        await victim_socket.close()
        await recv_until(watcher, change("leave", victim), timeout=5)
        assert await presence_of(pair[1], token, people.stream) == [watcher_id]
        assert await presence_of(pair[1], token, elsewhere) == []
    finally:
        await closed_all([watcher, victim_socket])


async def test_presence_paths_answer_404_alike_for_hidden_unknown_and_odd_names(
    pair, env
):
    """Under daphne, over the three presence paths: a room hidden from the
    caller and one that does not exist get the same body; a name that is
    percent-encoded, NUL, not UTF-8 or far too long is a 404, never a 500."""
    a, _ = pair
    people = await cast(env, 1, public=False, members=0)  # a room he is not in
    output = await asyncio.to_thread(
        manage, env, "service_key", "create", f"presence-{uuid.uuid4().hex[:8]}"
    )
    key = {"Authorization": "ApiKey " + re.search(r"\bask_\S+", output).group(0)}
    token = people.tokens[0]
    unknown = f"nowhere-{uuid.uuid4().hex[:8]}"
    not_found = {"detail": "Not found.", "code": "not_found"}

    async def get(path: str, **auth) -> tuple[int, object]:
        return await http("GET", f"{a.http}{path}", **auth)

    for path in (
        f"/api/rooms/{people.slug}/presence",
        f"/api/rooms/{unknown}/presence",
        f"/api/streams/{people.stream}/presence",
        f"/api/streams/room:{unknown}/presence",
    ):
        assert await get(path, token=token) == (404, not_found), path
    assert await get(f"/api/server/streams/room:{unknown}/presence", headers=key) == (
        404,
        not_found,
    )
    status, body = await get(
        f"/api/server/streams/{quote(people.stream, safe='')}/presence", headers=key
    )
    assert (status, body) == (200, {"stream": people.stream, "users": [], "count": 0})
    odd = ["room:lobby%00", "room:lob%00by", "%ff", "room:%ff", "room:lobby%2Fx"]
    odd += ["room:" + "a" * 5000, "%F0%9F%98%80:x", "room:lobby%20"]
    for name in odd:
        for path, auth in (
            (f"/api/streams/{name}/presence", {"token": token}),
            (f"/api/server/streams/{name}/presence", {"headers": key}),
            (f"/api/rooms/{name.removeprefix('room:')}/presence", {"token": token}),
        ):
            assert await get(path, **auth) == (404, not_found), path[:80]
