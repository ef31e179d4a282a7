"""A reconnect storm driven by the client across a SIGTERM (4503) and a SIGKILL.

Twelve sockets of four users follow `room:lobby` while the server is drained,
restarted, killed and restarted on the same port and database. Messages are
posted over REST while the sockets reconnect and stored by another process
while the server is down. Every socket must end with exactly the stored ids,
in order: none lost, none doubled (since-based resume, no client-side hiding:
duplicates and gaps are counted, and must be zero).
"""

import asyncio
import signal

import pytest

from authsocket_client import ApiClient, MemoryTokenStore
from tests.client.conftest import PASSWORD
from tests.servers import manage

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

USERS = ("alice", "bob", "carol", "admin")
SOCKETS_PER_USER = 3

STORE_WHILE_DOWN = """
from realtime.models import Room
from realtime.tests.messages import room_message_store
room = Room.objects.get(slug="lobby")
for n in range({count}):
    room_message_store(room=room, sender=None, data={{"while_down": {tag!r}, "n": n}})
"""


async def store_while_down(env, tag: str, count: int = 5) -> None:
    await asyncio.to_thread(
        manage, env, "shell", "-c", STORE_WHILE_DOWN.format(count=count, tag=tag)
    )


async def post(api: ApiClient, tag: str, count: int = 5) -> None:
    for n in range(count):
        await api.room_post("lobby", {"tag": tag, "n": n})


async def collect(socket, into: list[int]) -> None:
    async for message in socket.messages():
        into.append(message.id)


async def test_reconnect_storm_across_sigterm_and_sigkill_loses_and_doubles_nothing(
    serve,
):
    server = serve()
    apis = [ApiClient(server.http, store=MemoryTokenStore()) for _ in USERS]
    sockets, received, readers = [], [], []
    try:
        for api, username in zip(apis, USERS, strict=True):
            await api.login(username, PASSWORD)
        for api in apis:
            for _ in range(SOCKETS_PER_USER):
                socket = api.socket(backoff_base=0.1, backoff_cap=1.0)
                sockets.append(socket)
        await asyncio.gather(*(s.wait_live(15) for s in sockets))
        await asyncio.gather(*(s.subscribe("room:lobby", since=0) for s in sockets))
        for socket in sockets:
            received.append([])
            readers.append(asyncio.create_task(collect(socket, received[-1])))
        poster = apis[0]
        await post(poster, "before")

        for sig, code in ((signal.SIGTERM, 4503), (signal.SIGKILL, 1006)):
            await asyncio.to_thread(server.stop, sig)
            await store_while_down(server.env, sig.name)
            await asyncio.to_thread(server.start)
            # Posted while the twelve sockets are reconnecting and resuming.
            await post(poster, f"after {sig.name}")
            async with asyncio.timeout(30):
                while not all(s.live for s in sockets):
                    await asyncio.sleep(0.05)
            assert all(s.stats.closes[code] == 1 for s in sockets), [
                s.stats.closes for s in sockets
            ]

        history = await poster.room_messages("lobby", after=0, limit=200)
        stored = [m["id"] for m in history]
        assert sum("while_down" in m["data"] for m in history) == 10
        async with asyncio.timeout(20):
            while any(s.position("room:lobby") != stored[-1] for s in sockets):
                await asyncio.sleep(0.05)
        for socket, ids in zip(sockets, received, strict=True):
            assert ids == stored
            assert socket.stats.duplicates == {} and socket.stats.gaps == {}
            assert socket.stats.connects == 3
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*(s.close() for s in sockets))
        await asyncio.gather(*(api.aclose() for api in apis))
