"""A text message that is not UTF-8, under plain daphne and authsocket.serve.

RFC 6455 §8.1: an endpoint that receives a text message whose payload is not
valid UTF-8 fails the connection, and §7.4.1 gives the code for it: 1007.
autobahn checks every text message as it arrives, before the application
sees it. Under plain daphne it dropped the TCP connection without a close
frame (its default ``failByDrop``): the client saw 1006, which
docs/protocol.md §4.3 tells it to answer by reconnecting, the bad message
again next time. Under either server it now gets a 1007 close frame,
counted in /metrics like the close codes the consumer sends.
"""

import asyncio
import contextlib
import json

import pytest
import websockets

from tests.http import login, sample, scrape
from tests.servers import demo_server
from tests.wsclient import DEMO_PASSWORD

pytestmark = [pytest.mark.e2e]

TIMEOUT = 10
INVALID_PAYLOAD = 1007
METRICS_TOKEN = "e2e-invalid-utf8-metrics-0123456789"


@pytest.fixture(scope="module", params=["daphne", "authsocket.serve"])
def server(request, migrated_template, tmp_path_factory):
    with demo_server(
        migrated_template,
        tmp_path_factory.mktemp("invalid-utf8"),
        module=request.param,
        AUTHSOCKET_METRICS_TOKEN=METRICS_TOKEN,
    ) as server:
        yield server


@pytest.fixture(scope="module")
def token(server) -> str:
    return login(server.http, "alice", DEMO_PASSWORD)["access"]


async def close_after_sending(server, token: str, payload: bytes):
    """Send `payload` as ONE text frame on a fresh socket: the close frame the
    server sent (None for a dropped connection), and whether a pong came."""
    async with websockets.connect(
        f"{server.ws}?token={token}", open_timeout=TIMEOUT
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "welcome"
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(payload, text=True)  # the bytes as they are, opcode 1
        answered = False
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(TIMEOUT):
                while True:
                    answered |= json.loads(await ws.recv())["type"] == "pong"
    return closed.value.rcvd, answered


@pytest.mark.parametrize(
    "payload",
    [
        b'{"type": "ping", "ref": "\xff"}',  # a byte UTF-8 never uses
        b'{"type": "ping", "ref": "\xc3"}',  # a sequence cut short
        b'{"type": "ping", "ref": "\xed\xa0\x80"}',  # a surrogate, U+D800
        b'{"type": "ping", "ref": "\xc0\xaf"}',  # an overlong "/"
    ],
    ids=["ff", "truncated", "surrogate", "overlong"],
)
async def test_a_text_message_that_is_not_utf8_closes_1007(server, token, payload):
    rcvd, answered = await close_after_sending(server, token, payload)
    assert rcvd is not None, "the connection was dropped without a close frame"
    assert rcvd.code == INVALID_PAYLOAD
    assert not answered


def closes_1007_counted(server) -> float:
    status, text = scrape(server, f"Bearer {METRICS_TOKEN}")
    assert status == 200
    return sample(text, f'authsocket_close_codes_total{{code="{INVALID_PAYLOAD}"}}')


def test_the_1007_is_counted_and_nothing_raises(server, token):
    before, mark = closes_1007_counted(server), len(server.lines)
    rcvd, _ = asyncio.run(close_after_sending(server, token, b'{"type": "\xff"}'))
    assert rcvd is not None and rcvd.code == INVALID_PAYLOAD
    assert closes_1007_counted(server) == before + 1
    # The application got its disconnect, nothing else: no message to decode.
    output = "".join(server.lines[mark:])
    assert "Traceback" not in output and "UnicodeDecodeError" not in output


async def test_the_server_still_answers_after_it(server, token):
    await close_after_sending(server, token, b'"\xff"')
    async with websockets.connect(
        f"{server.ws}?token={token}", open_timeout=TIMEOUT
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "welcome"
        await ws.send(json.dumps({"type": "ping", "ref": "é"}))
        assert json.loads(await ws.recv()) == {"type": "pong", "ref": "é"}
