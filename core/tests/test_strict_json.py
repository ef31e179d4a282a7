"""Strict JSON (docs/protocol.md): the parser, and every JSON endpoint of the API.

A body deeper than 64, or with NaN, Infinity or a number that is not a finite
double, is 400 `parse_error` on login, refresh, password change, room posting
and notify, with nothing logged at ERROR (before: a 500 and a traceback).
"""

import logging
import time

import pytest
from rest_framework.test import APIClient

from accounts.services import session_open
from core import strict_json
from realtime.models import Room
from realtime.services import membership_create

MAX = strict_json.MAX_DEPTH


def nested_array(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_object(depth: int) -> str:
    """`{"a":{"a":…0…}}`: `depth` objects around a scalar."""
    return '{"a":' * depth + "0" + "}" * depth


# --- the parser ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        nested_array(MAX),
        nested_object(MAX),
        "0",
        '"[[[[' + "[" * 100 + '"',  # brackets inside a string are text
        "[" + ",".join(['"\\"["'] * 100) + "]",
        '["' + '\\"' * 100 + '",' + nested_array(MAX - 1) + "]",  # 64 deep
        "1e308",
        "-1.7976931348623157e308",
        "1e-400",  # underflows to 0.0: a finite double
        "1" + "0" * 308,  # 1e308 as an integer: inside the double range
    ],
)
def test_strict_json_accepts(text):
    strict_json.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        nested_array(MAX + 1),
        nested_object(MAX + 1),
        nested_array(100_000),
        "[" * 100_000,  # unbalanced: refused before the C parser recurses
        '["' + '\\"' * 100 + '",' + nested_array(MAX) + "]",  # 65 deep
        "NaN",
        "[Infinity]",
        '{"a": -Infinity}',
        "1e400",
        "-1e400",
        "1" + "0" * 309,  # 1e309 as an integer: no double holds it
        "9" * 5000,  # beyond Python's own digit limit
        "[1,]",
        b"\xff",
    ],
)
def test_strict_json_refuses_with_its_own_error(text):
    with pytest.raises(strict_json.StrictJSONError):
        strict_json.loads(text)


def test_check_refuses_python_values_strict_json_cannot_carry():
    deep = 0
    for _ in range(MAX):
        deep = [deep]
    strict_json.check(deep)
    for bad in ([deep], float("nan"), [float("inf")], {"n": 10**400}):
        with pytest.raises(strict_json.StrictJSONError):
            strict_json.check(bad)
    with pytest.raises(strict_json.StrictJSONError):
        strict_json.check(deep, max_depth=MAX - 1)


# Texts of 64 KB (the largest frame) that the depth scan reads before parsing.
# Each `"` of an unterminated string of escaped quotes used to rescan the rest
# of the text: quadratic, over a minute of CPU for one frame or one request.
SCAN_WORST_CASES = {
    "escaped quotes": '"' + '\\"' * 32_000 + "[" * 65,
    "quote, backslash": '"\\' * 32_000 + "[" * 65,
    "nested, then escaped quotes": "[" * 60 + '"' + '\\"' * 32_000 + "{" * 10,
    "closed strings between": '"a' * 32_000 + "[" * 65,
}
SCAN_BOUND = 1.0  # seconds; linear takes milliseconds, quadratic took 70 s


@pytest.mark.parametrize("text", SCAN_WORST_CASES.values(), ids=SCAN_WORST_CASES)
def test_the_depth_scan_is_linear(text):
    started = time.perf_counter()
    with pytest.raises(strict_json.StrictJSONError):
        strict_json.loads(text)
    assert time.perf_counter() - started < SCAN_BOUND


@pytest.mark.django_db
def test_an_unthrottled_endpoint_is_not_a_cpu_sink():
    """`/api/auth/refresh` needs no credential and has no throttle."""
    started = time.perf_counter()
    response = post("/api/auth/refresh", None, SCAN_WORST_CASES["escaped quotes"])
    assert time.perf_counter() - started < SCAN_BOUND
    assert (response.status_code, response.json()["code"]) == (400, "parse_error")


# --- every JSON endpoint of the API -------------------------------------------------

NOT_STRICT = {
    "deep array": nested_array(1000),
    "deep object": nested_object(1000),
    "one too deep": nested_array(MAX + 1),
    "NaN": '{"username": NaN, "password": "x", "refresh": NaN, "data": NaN}',
    "Infinity": '{"data": Infinity, "refresh": Infinity}',
    "-Infinity": '{"data": -Infinity, "refresh": -Infinity}',
    "1e400": '{"data": 1e400, "refresh": 1e400, "old_password": 1e400}',
    "huge integer": '{"data": 1' + "0" * 400 + "}",
    "deep data": '{"data": ' + nested_array(MAX) + "}",  # the body is 65 deep
}


@pytest.fixture
def error_log(caplog):
    """Records at ERROR or above from anywhere, `django.request` included."""
    request_logger = logging.getLogger("django.request")
    request_logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG):
            yield lambda: [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        request_logger.removeHandler(caplog.handler)


@pytest.fixture
def endpoints(make_user):
    """(path, Authorization header) of every endpoint that reads a JSON body."""
    alice = make_user("alice", "pw-alice-123")
    staff = make_user("staff", "pw-staff-123", is_staff=True)
    room = Room.objects.create(slug="lobby", title="Lobby", public=True)
    membership_create(user=alice, room=room)
    token = session_open(user=alice, user_agent="pytest").access
    staff_token = session_open(user=staff, user_agent="pytest").access
    return {
        "login": ("/api/auth/login", None),
        "refresh": ("/api/auth/refresh", None),
        "password": ("/api/auth/password", token),
        "room messages": ("/api/rooms/lobby/messages", token),
        "notify": (f"/api/users/{alice.pk}/notify", staff_token),
    }


def post(path: str, token: str | None, body: str):
    client = APIClient(raise_request_exception=False)
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.post(path, body, content_type="application/json")


@pytest.mark.django_db
@pytest.mark.parametrize("body", NOT_STRICT.values(), ids=NOT_STRICT.keys())
@pytest.mark.parametrize(
    "endpoint", ["login", "refresh", "password", "room messages", "notify"]
)
def test_a_body_that_is_not_strict_json_is_400_parse_error(
    endpoints, error_log, endpoint, body
):
    path, token = endpoints[endpoint]
    response = post(path, token, body)
    assert (response.status_code, response.json()) == (
        400,
        {"detail": response.json()["detail"], "code": "parse_error"},
    )
    assert error_log() == []


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ["login", "refresh", "password", "notify"])
def test_a_body_its_charset_cannot_decode_is_400_parse_error(
    endpoints, error_log, endpoint
):
    """DRF refuses charsets that are no text encoding (`rot13`), but punycode's
    decoder raises a bare `UnicodeError`, not a `UnicodeDecodeError`: that was
    a 500, and a traceback quoting the body, even on the unauthenticated login."""
    path, token = endpoints[endpoint]
    client = APIClient(raise_request_exception=False)
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.generic(
        "POST", path, b'{"x": 1}', "application/json; charset=punycode"
    )
    assert (response.status_code, response.json()["code"]) == (400, "parse_error")
    assert error_log() == []


@pytest.mark.django_db
def test_data_exactly_63_deep_is_accepted_on_both_posting_endpoints(endpoints):
    body = '{"data": ' + nested_array(MAX - 1) + "}"
    for endpoint in ("room messages", "notify"):
        response = post(*endpoints[endpoint], body)
        assert response.status_code == 201, response.json()
        assert response.json()["data"] == strict_json.loads(nested_array(MAX - 1))


@pytest.fixture
def bodiless_endpoints(make_user):
    """(path, token) of POST endpoints that take no body, and the token's user."""
    alice = make_user("alice", "pw-alice-123")
    Room.objects.create(slug="lobby", title="Lobby", public=True)
    token = session_open(user=alice, user_agent="pytest").access
    paths = [
        "/api/auth/logout",
        "/api/auth/logout-others",
        "/api/auth/logout-all",
        "/api/auth/ticket",
        "/api/rooms/lobby/membership",
    ]
    return [(path, token) for path in paths]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body", ["NaN", '{"x": 1e400}', "{"], ids=["NaN", "1e400", "cut"]
)
def test_a_body_sent_as_json_is_strict_even_where_it_is_not_read(
    bodiless_endpoints, body
):
    """The endpoint refuses it (400 `parse_error`) and does nothing: the session
    still works afterwards."""
    for path, token in bodiless_endpoints:
        response = post(path, token, body)
        assert (response.status_code, response.json()["code"]) == (400, "parse_error")
    me = APIClient()
    me.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert me.get("/api/me").status_code == 200
    assert not Room.objects.get(slug="lobby").memberships.exists()


@pytest.mark.django_db
def test_a_bodiless_endpoint_still_takes_no_body_or_an_empty_one(bodiless_endpoints):
    path, token = bodiless_endpoints[3]  # the ticket
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.post(path).status_code == 200
    assert client.post(path, "", content_type="application/json").status_code == 200
    assert client.post(path, "{}", content_type="application/json").status_code == 200


@pytest.mark.django_db
def test_authentication_is_answered_before_the_body():
    response = post("/api/auth/ticket", None, "NaN")
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")


@pytest.mark.django_db
@pytest.mark.parametrize("charset", ["latin-1", "utf-16", "punycode"])
def test_a_body_in_a_charset_other_than_utf8_is_refused_unread(
    endpoints, error_log, charset
):
    """JSON is UTF-8 (RFC 8259 §8.1). A body decoded in whatever charset it
    named cost what that decoder costs: punycode's is quadratic, 18 s of CPU
    for a 1 MB body on the unthrottled refresh."""
    client = APIClient(raise_request_exception=False)
    body = b"-" + b"a" * 300_000  # punycode's worst case, were it decoded
    response = client.generic(
        "POST", "/api/auth/refresh", body, f"application/json; charset={charset}"
    )
    assert (response.status_code, response.json()["code"]) == (400, "parse_error")
    assert "bodies are UTF-8" in response.json()["detail"]
    assert error_log() == []


@pytest.mark.django_db
@pytest.mark.parametrize("charset", ["utf-8", "UTF8", "us-ascii"])
def test_utf8_by_any_of_its_names_is_read(endpoints, charset):
    path, token = endpoints["room messages"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    body = '{"data": "caf\u00e9"}'.encode()
    response = client.generic(
        "POST", path, body, f"application/json; charset={charset}"
    )
    assert response.status_code == 201, response.json()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "media_type", ["*/*", "application/*", "*/json", "*/*; charset=utf-8"]
)
def test_a_wildcard_content_type_is_415_even_where_the_body_is_ignored(
    endpoints, media_type
):
    """DRF took `*/*` for JSON, and the strict check looked for
    `application/json` only: a logout with `{"a": NaN}` logged out (204)."""
    path, token = endpoints["room messages"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    posted = client.generic("POST", path, b'{"data": 1}', media_type)
    logout = client.generic("POST", "/api/auth/logout", b'{"a": NaN}', media_type)
    assert (posted.status_code, logout.status_code) == (415, 415)
    assert client.get("/api/me").status_code == 200  # still signed in
