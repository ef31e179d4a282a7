"""The client's copy of the wire constants agrees with the server's."""

from authsocket_client import protocol as client
from realtime import protocol as server


def test_close_codes_agree():
    ours = {int(code) for code in client.CloseCode} - {client.CloseCode.ABNORMAL}
    assert ours == {int(code) for code in server.CloseCode}


def test_subprotocols_agree():
    assert client.SUBPROTOCOL == server.SUBPROTOCOL
    assert client.TOKEN_SUBPROTOCOL_PREFIX == server.TOKEN_SUBPROTOCOL_PREFIX
    assert client.USER_STREAM == server.USER_STREAM
    assert set(client.TRANSPORTS) == {t.value for t in server.Transport}
