"""Small helpers shared by the reliability tests."""

import json
from pathlib import Path
from urllib.parse import quote

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from realtime.protocol import SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX, ServerFrame

CORPUS = Path(__file__).resolve().parent.parent / "data" / "bad_tokens.json"


def bad_token_cases() -> list[dict]:
    return json.loads(CORPUS.read_text())["cases"]


def wire(token: str) -> bytes:
    """The bytes a hostile raw client can put on the wire for `token`."""
    return token.encode("utf-8", "surrogatepass")


def communicator(transport: str, token: str, path: str = "/ws/"):
    """A communicator on the real app carrying `token` by one transport."""
    from authsocket.asgi import application

    headers, subprotocols, url = [], None, path
    if transport == "query":
        url = f"{path}?token={quote(wire(token), safe='')}"
    elif transport == "ticket":
        url = f"{path}?ticket={quote(wire(token), safe='')}"
    elif transport == "header":
        headers = [(b"authorization", b"Bearer " + wire(token))]
    elif transport == "subprotocol":
        # daphne hands the application header values decoded as latin-1.
        offered = TOKEN_SUBPROTOCOL_PREFIX + wire(token).decode("latin-1")
        subprotocols = [SUBPROTOCOL, offered]
    else:
        raise ValueError(transport)
    return WebsocketCommunicator(
        application, url, headers=headers, subprotocols=subprotocols
    )


async def refused(comm) -> bool:
    """True when the socket was closed before accept (daphne then answers 403)."""
    connected, _ = await comm.connect(timeout=5)
    if connected:
        await comm.disconnect()
    return not connected


async def welcomed(comm) -> dict:
    connected, _ = await comm.connect(timeout=5)
    assert connected, "a valid credential was refused"
    frame = await comm.receive_json_from(timeout=5)
    assert frame["type"] == ServerFrame.WELCOME
    return frame


async def db(function, *args, **kwargs):
    return await database_sync_to_async(function)(*args, **kwargs)
