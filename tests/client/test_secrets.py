"""Secrets stay out of the client's reprs, error messages and logs."""

import asyncio
import logging
import re
import time

import pytest

from authsocket_client import ApiClient, MemoryTokenStore, Tokens
from authsocket_client.log_redaction import redact
from tests.client.conftest import PASSWORD

ACCESS, REFRESH = "eyJhbGciOi.access-secret.sig", "refresh-secret"
LOGGERS = ("websockets", "authsocket_client")


def held_tokens() -> Tokens:
    return Tokens(ACCESS, REFRESH, expires_at=time.time() + 300, lifetime=300)


def test_tokens_repr_shows_neither_token():
    shown = repr(held_tokens())
    assert ACCESS not in shown and REFRESH not in shown
    assert "lifetime=300" in shown  # still useful to log


@pytest.mark.parametrize("transport", ["query", "ticket"])
async def test_a_ws_url_websockets_refuses_is_refused_before_a_secret_is_in_it(
    transport, caplog
):
    """websockets' InvalidURI quotes the whole URL: refused only once the
    token (or ticket) is in its query, it would put the secret in the
    socket's error and in the log of the unexpected error."""
    store = MemoryTokenStore(held_tokens())
    async with ApiClient("http://127.0.0.1:9", store=store) as api:
        with pytest.raises(ValueError) as refused:
            api.socket(transport=transport, ws_url="http://127.0.0.1:9/ws/")
    assert ACCESS not in str(refused.value)
    assert ACCESS not in caplog.text


class Captured(logging.Handler):
    """Every record of the client's and websockets' loggers, as logged.

    Attached to those loggers themselves: a record reaches their handlers
    before the root's, whose redaction (the project's, in this test
    process) would otherwise hide what a client process without it logs.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def client_debug_log():
    captured, loggers = Captured(), [logging.getLogger(n) for n in LOGGERS]
    levels = [each.level for each in loggers]
    for each in loggers:
        each.addHandler(captured)
        each.setLevel(logging.DEBUG)
    yield captured.lines
    for each, level in zip(loggers, levels, strict=True):
        each.removeHandler(captured)
        each.setLevel(level)


@pytest.mark.e2e
@pytest.mark.parametrize("transport", ["header", "subprotocol", "ticket", "query"])
async def test_websockets_debug_log_of_a_socket_holds_no_credential(
    serve, transport, client_debug_log
):
    """At DEBUG websockets logs each handshake header and each frame: the
    token in every transport, the ticket, the token of an `auth` renewal."""
    server = serve(AUTHSOCKET_ACCESS_TTL=3, AUTHSOCKET_LEEWAY=0)
    async with ApiClient(server.http) as api:
        await api.login("alice", PASSWORD)
        first = api.tokens.access
        async with api.socket(transport=transport) as socket:
            async with asyncio.timeout(10):  # renewed at about 2 s of 3
                while socket.stats.renewals < 1:
                    await asyncio.sleep(0.05)
            renewed = api.tokens.access
    logged = "\n".join(client_debug_log)
    assert "> GET /ws/" in logged and '"type": "auth"' in logged  # what it guards
    assert first != renewed
    assert first not in logged and renewed not in logged
    assert first.rsplit(".", 1)[1] not in logged  # not even a signature
    assert (
        re.search(r"eyJ|ticket=(?!\[redacted\])|token=(?!\[redacted\])", logged) is None
    )


def test_redact_takes_every_credential_out():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    for text in (
        f"> GET /ws/?token={jwt} HTTP/1.1",
        "> GET /ws/?x=1&ticket=tkt_Secret-1 HTTP/1.1",
        f"> Authorization: Bearer {jwt}",
        f"> Sec-WebSocket-Protocol: authsocket.v1, authsocket.token.{jwt}",
        '> TEXT \'{"type":"auth","token":"eyJhbGciOiJIUzI1...bmF0dXJl"}\' [220 bytes]',
    ):
        clean = redact(text)
        assert "[redacted]" in clean
        for secret in (jwt, "tkt_Secret-1", "bmF0dXJl", "eyJ"):
            assert secret not in clean, (text, clean)
