"""A small protocol client for the deployment tests (HTTP API + WebSocket)."""

import asyncio
import json
import time

import websockets

from tests.http import call

TIMEOUT = 10.0


def _request(method: str, url: str, body, token, headers) -> tuple[int, object]:
    status, parsed, _ = call(method, url, body, token, headers)
    return status, parsed


async def http(method, url, body=None, *, token=None, headers=None):
    """(status, decoded JSON or None), without blocking the event loop."""
    return await asyncio.to_thread(_request, method, url, body, token, headers)


async def login(base: str, username: str, password: str) -> dict:
    status, body = await http(
        "POST", f"{base}/api/auth/login", {"username": username, "password": password}
    )
    assert status == 200, (status, body)
    return body


async def ticket(base: str, access: str) -> str:
    status, body = await http("POST", f"{base}/api/auth/ticket", token=access)
    assert status == 200, (status, body)
    return body["ticket"]


async def connect(
    base_ws: str, *, token=None, ticket=None, headers=None, timeout=TIMEOUT
):
    """Open /ws/ with ?token= or ?ticket= and return (socket, welcome frame)."""
    query = f"?ticket={ticket}" if ticket else f"?token={token}"
    ws = await asyncio.wait_for(
        websockets.connect(
            f"{base_ws}/ws/{query}", additional_headers=headers, open_timeout=timeout
        ),
        timeout,
    )
    welcome = await recv_json(ws, timeout)
    assert welcome["type"] == "welcome", welcome
    return ws, welcome


async def recv_json(ws, timeout=TIMEOUT) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def send_json(ws, frame: dict):
    await ws.send(json.dumps(frame))


async def recv_until(ws, predicate, timeout=TIMEOUT) -> dict:
    """The first frame for which `predicate` holds; others are skipped."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no matching frame")
        frame = await recv_json(ws, remaining)
        if predicate(frame):
            return frame


async def close_code(ws, timeout=TIMEOUT) -> int | None:
    """Wait until the server closes `ws` (reading what comes); its close code."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed:
        pass
    return ws.close_code if ws.close_code is not None else None


async def watch(ws, stream: str) -> dict:
    """Subscribe with presence; the snapshot that follows `subscribed`."""
    await send_json(ws, {"type": "subscribe", "stream": stream, "presence": True})
    await recv_until(ws, lambda f: f["type"] == "subscribed")
    return await recv_until(ws, lambda f: f["type"] == "presence")


async def subscribe(ws, stream: str, since=None, timeout=TIMEOUT) -> dict:
    """Send `subscribe` and return its answer (`subscribed` or an error)."""
    ref = f"sub-{stream}-{time.monotonic_ns()}"
    frame = {"type": "subscribe", "stream": stream, "ref": ref}
    if since is not None:
        frame["since"] = since
    await send_json(ws, frame)
    return await recv_until(
        ws,
        lambda f: (
            f.get("ref") == ref
            or (f["type"] == "subscribed" and f.get("stream") == stream)
        ),
        timeout,
    )
