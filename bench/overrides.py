"""What the consumer overrides of realtime/channels_overrides.py save, in-process.

    DJANGO_DEBUG=1 python -m bench.overrides [--frames 20000]

Feeds `ping` frames straight into a `/ws/` consumer's `dispatch`, and
disconnects into its `websocket_disconnect` (the part daphne and the network
do not hide), with authsocket's versions and with Channels' stock ones (a
`close_old_connections` hop to the sync thread each time), alternating rounds;
prints µs per call. The layer overrides have their own figures in
docs/architecture.md.
"""

import argparse
import asyncio
import contextlib
import os
import statistics
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authsocket.settings")
django.setup()

from channels.consumer import AsyncConsumer  # noqa: E402
from channels.exceptions import StopConsumer  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402

from realtime.channels_overrides import HoplessWebsocketConsumer  # noqa: E402
from realtime.consumers import StreamConsumer  # noqa: E402
from realtime.ratelimit import FrameLimiter  # noqa: E402

PING = {"type": "websocket.receive", "text": '{"type":"ping"}'}
CLOSE = {"type": "websocket.disconnect", "code": 1000}


class User:
    pk = 1


def consumer() -> StreamConsumer:
    """A consumer past its handshake whose frames go nowhere."""
    socket = StreamConsumer()
    socket.scope = {"type": "websocket", "path": "/ws/"}
    socket.user, socket.user_id, socket.sid = User(), 1, "bench"
    socket.groups_joined = []
    socket.limiter = FrameLimiter("100000000/s")

    async def base_send(message):
        pass

    socket.base_send = base_send
    return socket


async def per_frame(dispatch, frames: int) -> float:
    """µs per frame through `dispatch`."""
    HoplessWebsocketConsumer.dispatch = dispatch
    socket = consumer()
    started = time.perf_counter()
    for _ in range(frames):
        await socket.dispatch(PING)
    return (time.perf_counter() - started) / frames * 1e6


async def per_close(websocket_disconnect, closes: int) -> float:
    """µs per `websocket.disconnect` through `websocket_disconnect`."""
    HoplessWebsocketConsumer.websocket_disconnect = websocket_disconnect
    sockets = [consumer() for _ in range(closes)]
    started = time.perf_counter()
    for socket in sockets:
        with contextlib.suppress(StopConsumer):
            await socket.websocket_disconnect(CLOSE)
    return (time.perf_counter() - started) / closes * 1e6


async def main(frames: int, rounds: int) -> None:
    ours = (
        HoplessWebsocketConsumer.dispatch,
        HoplessWebsocketConsumer.websocket_disconnect,
    )
    stock = AsyncConsumer.dispatch, AsyncWebsocketConsumer.websocket_disconnect
    results = {}
    for _ in range(rounds):
        for name, (dispatch, disconnect) in {
            "authsocket": ours,
            "Channels": stock,
        }.items():
            results.setdefault(f"{name}: µs per ping", []).append(
                await per_frame(dispatch, frames)
            )
            results.setdefault(f"{name}: µs per disconnect", []).append(
                await per_close(disconnect, frames // 10)
            )
        HoplessWebsocketConsumer.dispatch = ours[0]
    for name, figures in sorted(results.items()):
        print(f"{name} {statistics.median(figures):.1f} (median of {rounds})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.frames, arguments.rounds))
