"""The accounts HTTP API (docs/protocol.md §2): login, refresh rotation, logout, errors."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuthSession
from accounts.tokens import decode_access

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


def login(api, username="alice", password="pw-alice-123", **headers):
    return api.post(
        "/api/auth/login",
        {"username": username, "password": password},
        format="json",
        **headers,
    )


def bearer(api, token):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def test_login_returns_token_pair_and_user(api, alice):
    response = login(api)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh", "token_type", "expires_in", "user"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["user"] == {"id": alice.pk, "username": "alice"}
    assert AuthSession.objects.filter(user=alice).count() == 1


def test_login_failures_are_byte_identical(api, alice, make_user):
    make_user("dora", "pw-dora-123", is_active=False)
    wrong = login(api, "alice", "wrong")
    unknown = login(api, "nobody", "whatever")
    inactive = login(api, "dora", "pw-dora-123")
    assert wrong.status_code == unknown.status_code == inactive.status_code == 401
    assert wrong.content == unknown.content == inactive.content
    assert wrong.json()["code"] == "invalid_credentials"
    assert wrong["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "alice"},
        {"password": "x"},
        {"username": 1, "password": "x"},
        {"username": ["alice"], "password": "x"},
        {"username": "alice", "password": None},
        {"username": "a" * 100_000, "password": "x"},
        {"username": "alice", "password": "p" * 100_000},
        {"username": "\ud800", "password": "x"},
        {"username": "alice", "password": "\udfff"},
        {"username": "al\x00ice", "password": "x"},
    ],
)
def test_malformed_login_bodies_are_400_never_500(api, alice, body):
    # json.dumps escapes lone surrogates as \udXXX, as a hostile client would.
    raw = json.dumps(body)
    response = api.generic(
        "POST", "/api/auth/login", raw, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "errors" in response.json()


@pytest.mark.parametrize(
    "raw, content_type",
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"just a string"', "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"username=alice", "application/x-www-form-urlencoded"),
    ],
)
def test_unparseable_bodies_are_4xx_json(api, raw, content_type):
    response = api.generic("POST", "/api/auth/login", raw, content_type=content_type)
    assert 400 <= response.status_code < 500
    assert {"detail", "code"} <= set(response.json())


def test_refresh_rotates_and_old_token_is_rotated_within_grace(api, alice):
    first = login(api).json()
    response = api.post(
        "/api/auth/refresh", {"refresh": first["refresh"]}, format="json"
    )
    assert response.status_code == 200
    second = response.json()
    assert second["refresh"] != first["refresh"]
    again = api.post("/api/auth/refresh", {"refresh": first["refresh"]}, format="json")
    assert again.status_code == 401
    assert again.json()["code"] == "token_rotated"
    session = AuthSession.objects.get(user=alice)
    assert session.revoked_at is None  # nothing revoked inside the grace
    assert bearer(api, second["access"]).get("/api/me").status_code == 200


def test_reuse_after_grace_revokes_the_whole_session(api, alice, settings):
    settings.AUTHSOCKET_REFRESH_GRACE = 0
    first = login(api).json()
    second = api.post(
        "/api/auth/refresh", {"refresh": first["refresh"]}, format="json"
    ).json()
    reused = api.post("/api/auth/refresh", {"refresh": first["refresh"]}, format="json")
    assert reused.status_code == 401
    assert reused.json()["code"] == "token_reused"
    assert AuthSession.objects.get(user=alice).revoked_at is not None
    newest = api.post(
        "/api/auth/refresh", {"refresh": second["refresh"]}, format="json"
    )
    assert newest.status_code == 401
    assert newest.json()["code"] == "revoked"
    me = bearer(api, second["access"]).get("/api/me")
    assert me.status_code == 401 and me.json()["code"] == "revoked"


def test_unknown_refresh_token_is_invalid_and_revokes_nothing(api, alice):
    login(api)
    response = api.post("/api/auth/refresh", {"refresh": "never-issued"}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert AuthSession.objects.filter(revoked_at__isnull=False).count() == 0


@pytest.mark.parametrize(
    "refresh",
    ["ACCESS", "r" * 257, "r" * 100_000, "", " x ", "\ud800", "a\x00b"],
    ids=[
        "access-jwt",
        "257-chars",
        "100k-chars",
        "empty",
        "blanks",
        "surrogate",
        "nul",
    ],
)
def test_any_string_that_is_not_a_refresh_token_is_401_invalid_token(
    api, alice, refresh
):
    """A string is a token or not: never 400 `invalid` for its length or text."""
    issued = login(api).json()
    if refresh == "ACCESS":
        refresh = issued["access"]
    raw = json.dumps({"refresh": refresh})  # lone surrogates escaped, as sent
    response = api.generic(
        "POST", "/api/auth/refresh", raw, content_type="application/json"
    )
    assert (response.status_code, response.json()["code"]) == (401, "invalid_token")
    assert AuthSession.objects.filter(revoked_at__isnull=False).count() == 0


@pytest.mark.parametrize("refresh", [None, 5, ["x"], {"x": 1}, True])
def test_a_refresh_that_is_not_a_string_is_400_invalid(api, refresh):
    response = api.post("/api/auth/refresh", {"refresh": refresh}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid")


def test_session_past_absolute_lifetime_cannot_refresh(api, alice, settings):
    first = login(api).json()
    AuthSession.objects.update(expires_at="2000-01-01T00:00:00Z")
    response = api.post(
        "/api/auth/refresh", {"refresh": first["refresh"]}, format="json"
    )
    assert response.json()["code"] == "session_expired"


def test_an_access_token_ends_with_its_session_at_the_latest(api, alice):
    """A socket opened with the token would stay open until its `exp`."""
    first = login(api).json()
    session = AuthSession.objects.get()
    session.expires_at = timezone.now() + timedelta(seconds=60)
    session.save(update_fields=["expires_at"])
    body = api.post(
        "/api/auth/refresh", {"refresh": first["refresh"]}, format="json"
    ).json()
    assert 58 <= body["expires_in"] <= 60
    claims = decode_access(body["access"])
    assert claims.exp <= int(session.expires_at.timestamp())
    assert claims.exp - claims.iat == body["expires_in"]


def test_refresh_updates_last_used_at(api, alice):
    first = login(api).json()
    before = AuthSession.objects.get().last_used_at
    api.post("/api/auth/refresh", {"refresh": first["refresh"]}, format="json")
    assert AuthSession.objects.get().last_used_at > before


@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_of_one_token_have_exactly_one_winner(alice):
    refresh = login(APIClient()).json()["refresh"]
    barrier = threading.Barrier(2)
    results = []

    def attempt():
        barrier.wait(timeout=10)
        response = APIClient().post(
            "/api/auth/refresh", {"refresh": refresh}, format="json"
        )
        results.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [200, 401]


def test_logout_makes_access_token_useless_on_http(api, alice):
    tokens = login(api).json()
    bearer(api, tokens["access"])
    assert api.post("/api/auth/logout").status_code == 204
    me = api.get("/api/me")
    assert me.status_code == 401
    assert me.json() == {"detail": "The session has been revoked.", "code": "revoked"}


def test_logout_others_keeps_current_session(api, alice):
    other = login(APIClient()).json()
    current = login(api).json()
    assert (
        bearer(api, current["access"]).post("/api/auth/logout-others").status_code
        == 204
    )
    assert api.get("/api/me").status_code == 200
    assert bearer(APIClient(), other["access"]).get("/api/me").status_code == 401


def test_logout_all_revokes_every_session(api, alice):
    other = login(APIClient()).json()
    current = login(api).json()
    assert (
        bearer(api, current["access"]).post("/api/auth/logout-all").status_code == 204
    )
    assert api.get("/api/me").status_code == 401
    assert bearer(APIClient(), other["access"]).get("/api/me").status_code == 401


def test_me_describes_the_caller(api, alice):
    tokens = login(api).json()
    body = bearer(api, tokens["access"]).get("/api/me").json()
    assert body == {
        "id": alice.pk,
        "username": "alice",
        "email": "alice@example.com",
        "is_staff": False,
    }


@pytest.mark.parametrize(
    "header, code",
    [
        (None, "not_authenticated"),
        ("Bearer", "invalid_token"),
        ("Bearer a b", "invalid_token"),
        ("Bearer not.a.jwt", "invalid_token"),
        ("Bearer \u00e9", "invalid_token"),
    ],
)
def test_bad_bearer_headers_are_401_with_www_authenticate(api, header, code):
    if header:
        api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get("/api/me")
    assert response.status_code == 401
    assert response.json()["code"] == code
    assert response["WWW-Authenticate"] == "Bearer"


def test_expired_access_token_is_token_expired(api, alice, open_session, settings):
    settings.AUTHSOCKET_LEEWAY = 0
    tokens = open_session(alice, access_ttl=-1)
    response = bearer(api, tokens.access).get("/api/me")
    assert response.json()["code"] == "token_expired"


def test_inactive_user_token_is_revoked(api, alice, open_session):
    tokens = open_session(alice)
    alice.is_active = False
    alice.save()
    assert bearer(api, tokens.access).get("/api/me").json()["code"] == "revoked"


def test_session_cookie_does_not_authenticate_the_api(api, alice):
    api.force_login(alice)
    assert api.get("/api/me").status_code == 401


def test_unknown_api_path_and_wrong_method_are_json(api):
    missing = api.get("/api/nope")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    wrong = api.get("/api/auth/login")
    assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"


def test_login_is_throttled_per_username_and_address(api, alice, settings):
    settings.AUTHSOCKET_LOGIN_THROTTLE = "3/min"
    codes = [login(api, "alice", "wrong").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    throttled = login(api, "alice", "wrong")
    assert throttled.json()["code"] == "throttled"
    assert "Retry-After" in throttled
    assert login(api, "bob", "wrong").status_code == 401  # other username, same address


def test_login_is_throttled_per_address_across_usernames(api, alice, settings):
    settings.AUTHSOCKET_LOGIN_ADDRESS_THROTTLE = "3/min"
    codes = [login(api, f"user{i}", "wrong").status_code for i in range(4)]
    assert codes == [401, 401, 401, 429]


def test_forwarded_for_is_ignored_without_trusted_proxies(api, alice, settings):
    settings.AUTHSOCKET_LOGIN_THROTTLE = "2/min"
    codes = [
        login(api, "alice", "wrong", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code
        for i in range(3)
    ]
    assert codes == [401, 401, 429]


@pytest.mark.parametrize(
    "setting, path, body",
    [
        ("AUTHSOCKET_LOGIN_THROTTLE", "/api/auth/login", "login"),
        ("AUTHSOCKET_LOGIN_ADDRESS_THROTTLE", "/api/auth/login", "login"),
        ("AUTHSOCKET_TICKET_THROTTLE", "/api/auth/ticket", None),
        ("AUTHSOCKET_PASSWORD_THROTTLE", "/api/auth/password", "password"),
    ],
)
def test_a_throttle_lowered_below_its_counter_still_says_when_to_retry(
    api, alice, open_session, settings, setting, path, body
):
    """DRF's `wait()` is None when a counter holds more attempts than the rate
    now allows (a deploy lowered the setting, counters kept in Redis): its 429
    then had no `Retry-After`, which every 429 must carry."""
    bodies = {
        "login": {"username": "alice", "password": "wrong"},
        "password": {"old_password": "wrong", "new_password": "x"},
        None: None,
    }
    bearer(api, open_session(alice).access)
    setattr(settings, setting, "3/min")
    for _ in range(3):
        assert api.post(path, bodies[body], format="json").status_code < 429
    setattr(settings, setting, "1/min")  # three counted, one allowed
    throttled = api.post(path, bodies[body], format="json")
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "throttled"
    assert int(throttled["Retry-After"]) > 0
