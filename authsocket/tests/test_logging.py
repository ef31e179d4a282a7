"""authsocket.logging: access-log request lines and credential values redacted."""

import pytest

from authsocket.logging import REDACTED, redact, redact_access_log_request


@pytest.mark.parametrize(
    "line, expected",
    [
        ("GET /ws/?token=eyJa.eyJb.sig", "GET /ws/"),
        (
            "GET /api/rooms/lobby/messages?after=3",
            "GET /api/rooms/lobby/messages",
        ),
        ("POST /api/auth/login", "POST /api/auth/login"),
        ("WSCONNECT /ws/", "WSCONNECT /ws/"),
    ],
)
def test_access_log_request_lines_lose_their_query(line, expected):
    assert redact_access_log_request(line) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abc.def-ghi",
        "url /ws/?ticket=SECRETTICKET&x=1",
        '{"refresh": "SECRETREFRESH", "password": "SECRETPW"}',
        "subprotocol authsocket.token.eyJhbGciOi.eyJzdWIiOi.SIGNATURE",
        "new_password=SECRETPW&old_password=SECRETPW",
        "GET /cb?access_token=SECRETPW&client_secret=SECRETPW",
        '{"refresh_token": "SECRETREFRESH"}',
        "authsocket_refresh_cookie=SECRETREFRESH",
    ],
)
def test_redact_removes_credential_values(text):
    cleaned = redact(text)
    for secret in (
        "abc.def-ghi",
        "SECRETTICKET",
        "SECRETREFRESH",
        "SECRETPW",
        "SIGNATURE",
    ):
        assert secret not in cleaned
    assert REDACTED in cleaned
