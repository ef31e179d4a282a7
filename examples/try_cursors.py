"""Live cursors on document 1: alice and bob see each other, carol is refused."""

import asyncio
import json

import websockets

from authsocket_client import ApiClient

URL = "http://127.0.0.1:8000"
CURSORS = "ws://127.0.0.1:8000/ws/docs/1/cursors/"


async def connect(username: str):
    async with ApiClient(URL) as api:
        tokens = await api.login(username, "authsocket-demo")
    headers = {"Authorization": f"Bearer {tokens.access}"}
    socket = await websockets.connect(CURSORS, additional_headers=headers)
    welcome = json.loads(await socket.recv())
    print(f"{username:5} <", welcome["type"], welcome["user"])
    return socket


async def main() -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    await alice.send(json.dumps({"type": "cursor", "x": 120, "y": 48}))
    print("bob   <", await bob.recv())
    await bob.send(json.dumps({"type": "cursor", "x": 7.5, "y": 300}))
    print("alice <", await alice.recv())  # bob's move: her own never comes back
    await alice.send(json.dumps({"type": "cursor", "x": "120", "y": 48}))
    print("alice <", await alice.recv())
    try:
        await connect("carol")
    except websockets.InvalidStatus as refused:
        print("carol refused: HTTP", refused.response.status_code)
    await alice.close()
    await bob.close()


asyncio.run(main())
