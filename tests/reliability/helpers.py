"""Small helpers shared by the reliability tests."""

import json
from pathlib import Path
from urllib.parse import quote

from channels.testing import WebsocketCommunicator

from realtime.protocol import SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX

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
