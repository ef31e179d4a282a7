"""authsocket.logging: access-log request lines and credential values redacted."""

import logging
import sys

import pytest
from django.conf import settings
from django.core.exceptions import TooManyFieldsSent

from accounts.bearer import MalformedBearer, bearer_token
from authsocket.logging import (
    REDACTED,
    OneLineFilter,
    redact,
    redact_access_log_request,
)

# What a refresh token or a ticket looks like: secrets.token_urlsafe(32).
OPAQUE = "Qx3v_0kR9mZ-aT7bLw2YhN5cJ8dPf1sGe4uVi6oKn0E"


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
        # Opaque credentials where no name says so: a path, a Host header.
        f"GET /api/auth/sessions/{OPAQUE}",
        f"Invalid HTTP_HOST header: '{OPAQUE}.example'.",
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
        OPAQUE,
    ):
        assert secret not in cleaned
    assert REDACTED in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "session Xk2mP9qL-aB3cD4eF5gH6iJ7kL8mN9oP revoked",  # a sid: 32 characters
        "digest 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "File /srv/app/realtime/presence/registry.py, line 179, in _join",
    ],
)
def test_identifiers_that_are_not_credentials_stay_readable(text):
    assert redact(text) == text


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer two tokens"])
def test_a_malformed_bearer_reason_survives_redaction(header):
    with pytest.raises(MalformedBearer) as refused:
        bearer_token(header)
    line = f"websocket refused: bad credential: Authorization header: {refused.value}"
    assert redact(line) == line


def test_a_clients_suspicious_request_is_one_line_at_warning():
    try:
        raise TooManyFieldsSent("The number of GET/POST parameters exceeded.")
    except TooManyFieldsSent:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "django.security.TooManyFieldsSent",
        logging.ERROR,
        __file__,
        1,
        "%s",
        ("The number of GET/POST parameters exceeded.",),
        exc_info,
    )
    assert OneLineFilter().filter(record)
    line = logging.Formatter("%(levelname)s %(name)s %(message)s").format(record)
    assert line == (
        "WARNING django.security.TooManyFieldsSent "
        "The number of GET/POST parameters exceeded."
    )


def test_django_security_logs_go_through_the_one_line_filter():
    logger = settings.LOGGING["loggers"]["django.security"]
    [handler] = logger["handlers"]
    filters = settings.LOGGING["handlers"][handler]["filters"]
    assert filters == ["one_line", "redact"]
