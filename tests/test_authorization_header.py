"""`Authorization: Bearer` is read the same way by the API and the WebSocket.

Before, `Bearer<TAB><token>` opened the API but not a socket: each interface
had its own parser. Both now use accounts.bearer; each spelling below gets
the same verdict from `GET /api/me` and from a real handshake.
"""

import pytest
from channels.db import database_sync_to_async
from rest_framework.test import APIClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

# `{t}` is a valid access token; True: the header authenticates.
SPELLINGS = {
    "Bearer {t}": True,
    "bearer {t}": True,
    "BEARER {t}": True,
    "Bearer\t{t}": True,
    "Bearer  \t {t}": True,
    " Bearer {t} ": True,
    "\tBearer\t{t}\t": True,
    "Bearer": False,
    "Bearer ": False,
    "Bearer {t} {t}": False,
    "Bearer {t}\textra": False,
    "Bearer\n{t}": False,
    "Bearer\u00a0{t}": False,
    "Bearer{t}": False,
    "Token {t}": False,
    "Basic {t}": False,
    "Bearer {t}x": False,
}


def api_accepts(header: str) -> bool:
    client = APIClient()
    response = client.get("/api/me", HTTP_AUTHORIZATION=header)
    assert response.status_code in (200, 401), response.status_code
    return response.status_code == 200


async def ws_accepts(ws, header: str) -> bool:
    communicator = ws(headers=[("authorization", header)])
    connected, _ = await communicator.connect(timeout=5)
    await communicator.disconnect()
    return connected


@pytest.mark.parametrize("spelling, accepted", SPELLINGS.items())
async def test_api_and_websocket_accept_the_same_spellings(
    ws, alice, open_session, spelling, accepted
):
    token = (await database_sync_to_async(open_session)(alice)).access
    header = spelling.format(t=token)
    api = await database_sync_to_async(api_accepts)(header)
    assert (api, await ws_accepts(ws, header)) == (accepted, accepted)
