"""Accounts API views of issue 4: refresh cookie mode, sessions, password."""

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import AuthSession

pytestmark = pytest.mark.django_db

COOKIE = {"HTTP_X_AUTHSOCKET_COOKIE": "1"}


@pytest.fixture
def api():
    return APIClient()


def login(api, user, **headers):
    return api.post(
        "/api/auth/login",
        {"username": user.username, "password": user.raw_password},
        format="json",
        **headers,
    )


def bearer(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def refresh_cookie(response):
    return response.cookies[django_settings.AUTHSOCKET_REFRESH_COOKIE]


# --- answers that carry credentials ---------------------------------------------------


@pytest.mark.parametrize("headers", [{}, COOKIE], ids=["body", "cookie"])
def test_no_answer_carrying_a_credential_may_be_stored_by_a_cache(api, alice, headers):
    """RFC 6749 §5.1: a shared cache or a proxy must not keep a token."""
    logged_in = login(api, alice, **headers)
    if headers:
        refreshed = api.post("/api/auth/refresh", **headers)
    else:
        body = {"refresh": logged_in.json()["refresh"]}
        refreshed = api.post("/api/auth/refresh", body, format="json")
    ticket = bearer(refreshed.json()["access"]).post("/api/auth/ticket")
    for response in (logged_in, refreshed, ticket):
        assert response.status_code == 200, response.content
        assert "no-store" in response["Cache-Control"]


# --- cookie mode (docs/protocol.md §2) ----------------------------------------------


@pytest.mark.parametrize("debug, secure", [(False, True), (True, False)])
def test_cookie_mode_login_sets_a_strict_httponly_cookie_and_no_body_refresh(
    api, alice, settings, debug, secure
):
    settings.DEBUG = debug
    response = login(api, alice, **COOKIE)
    assert response.status_code == 200
    assert "refresh" not in response.json()
    assert response.json()["access"]
    cookie = refresh_cookie(response)
    assert cookie.value
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/api/auth/"
    assert bool(cookie["secure"]) is secure
    assert int(cookie["max-age"]) > 0


def test_cookie_mode_refresh_reads_and_rotates_the_cookie(api, alice):
    first = refresh_cookie(login(api, alice, **COOKIE)).value
    response = api.post("/api/auth/refresh", **COOKIE)  # the client sends the cookie
    assert response.status_code == 200
    assert "refresh" not in response.json()
    second = refresh_cookie(response).value
    assert second and second != first
    api.cookies[django_settings.AUTHSOCKET_REFRESH_COOKIE] = first
    stale = api.post("/api/auth/refresh", **COOKIE)
    assert stale.status_code == 401 and stale.json()["code"] == "token_rotated"


def test_without_the_header_the_cookie_is_ignored(api, alice):
    login(api, alice, **COOKIE)  # the client now holds the cookie
    refresh = api.post("/api/auth/refresh", {}, format="json")
    assert refresh.status_code == 400
    assert refresh.json()["code"] == "invalid"
    logout = api.post("/api/auth/logout")
    assert logout.status_code == 401
    assert AuthSession.objects.get().revoked_at is None


def test_cookie_mode_refresh_without_a_cookie_is_401(api, alice):
    response = api.post("/api/auth/refresh", **COOKIE)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_cookie_mode_logout_reads_the_cookie_and_clears_it(api, alice):
    login(api, alice, **COOKIE)
    response = api.post("/api/auth/logout", **COOKIE)
    assert response.status_code == 204
    assert AuthSession.objects.get().revoked_at is not None
    cleared = refresh_cookie(response)
    assert cleared.value == "" and cleared["path"] == "/api/auth/"
    again = api.post("/api/auth/refresh", **COOKIE)
    assert again.status_code == 401  # the browser dropped it; nothing to refresh


@pytest.mark.parametrize("bearer_token", ["expired", "garbage"])
def test_cookie_mode_logout_with_a_dead_access_token_signs_out_by_the_cookie(
    api, alice, open_session, bearer_token
):
    """docs/protocol.md §2.4: without a usable Bearer the cookie's session is
    revoked, "so a tab whose access token has expired can still sign out". A
    tab sends the token it holds, expired or not: that answered 401
    `token_expired` and left both the session and the cookie alive."""
    login(api, alice, **COOKIE)
    tokens = {
        "expired": open_session(alice, access_ttl=-3600).access,
        "garbage": "not-a-jwt",
    }
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens[bearer_token]}")
    response = api.post("/api/auth/logout", **COOKIE)
    assert response.status_code == 204
    [revoked] = AuthSession.objects.filter(revoked_at__isnull=False)
    assert revoked.user_agent == ""  # the cookie's session, not the token's
    assert refresh_cookie(response).value == ""


def test_cookie_mode_logout_clears_the_cookie_even_when_it_names_no_session(api):
    """§2.4: cookie-mode logout "always clears the cookie"; one that names no
    session is useless, yet the 401 left it in the browser."""
    api.cookies[django_settings.AUTHSOCKET_REFRESH_COOKIE] = "never-issued"
    response = api.post("/api/auth/logout", **COOKIE)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    cleared = refresh_cookie(response)
    assert cleared.value == "" and cleared["path"] == "/api/auth/"


def test_an_expired_access_token_without_cookie_mode_is_still_token_expired(
    api, alice, open_session
):
    login(api, alice, **COOKIE)  # the cookie is there, the header is not
    api.credentials(
        HTTP_AUTHORIZATION=f"Bearer {open_session(alice, access_ttl=-3600).access}"
    )
    response = api.post("/api/auth/logout")
    assert (response.status_code, response.json()["code"]) == (401, "token_expired")
    assert not AuthSession.objects.filter(revoked_at__isnull=False).exists()


def test_body_mode_login_still_returns_the_refresh_token(api, alice):
    response = login(api, alice)
    assert response.json()["refresh"]
    assert django_settings.AUTHSOCKET_REFRESH_COOKIE not in response.cookies


# --- sessions ---------------------------------------------------------------


def test_sessions_list_shape_and_current_flag(api, alice, bob):
    other = login(APIClient(), alice).json()
    login(APIClient(), bob)
    current = login(
        APIClient(), alice, HTTP_USER_AGENT="Mozilla/5.0 test-browser"
    ).json()
    revoked = login(APIClient(), alice).json()
    bearer(revoked["access"]).post("/api/auth/logout")
    response = bearer(current["access"]).get("/api/auth/sessions")
    assert response.status_code == 200
    sessions = response.json()
    assert len(sessions) == 2  # live sessions of the caller only
    for session in sessions:
        assert set(session) == {
            "id",
            "created_at",
            "last_used_at",
            "user_agent",
            "current",
        }
        assert isinstance(session["created_at"], int)
        assert isinstance(session["last_used_at"], int)
    [mine] = [s for s in sessions if s["current"]]
    assert mine["user_agent"] == "Mozilla/5.0 test-browser"
    assert [s["current"] for s in sessions].count(True) == 1
    assert other["access"] not in response.content.decode()


def test_deleting_another_users_or_an_unknown_session_is_404(api, alice, bob):
    mine = login(APIClient(), alice).json()
    bobs = login(APIClient(), bob).json()
    bob_sid = bearer(bobs["access"]).get("/api/auth/sessions").json()[0]["id"]
    for sid in (bob_sid, "no-such-session"):
        response = bearer(mine["access"]).delete(f"/api/auth/sessions/{sid}")
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found.", "code": "not_found"}
    assert bearer(bobs["access"]).get("/api/me").status_code == 200


def test_deleting_an_already_revoked_session_is_404(api, alice):
    mine = login(APIClient(), alice).json()
    other = login(APIClient(), alice).json()
    sid = [
        s["id"]
        for s in bearer(mine["access"]).get("/api/auth/sessions").json()
        if not s["current"]
    ][0]
    assert bearer(mine["access"]).delete(f"/api/auth/sessions/{sid}").status_code == 204
    assert bearer(mine["access"]).delete(f"/api/auth/sessions/{sid}").status_code == 404
    assert bearer(other["access"]).get("/api/me").json()["code"] == "revoked"


# --- password ---------------------------------------------------------------


def change_password(token, old, new):
    return bearer(token).post(
        "/api/auth/password",
        {"old_password": old, "new_password": new},
        format="json",
    )


def test_wrong_old_password_is_400_wrong_password(alice):
    tokens = login(APIClient(), alice).json()
    response = change_password(tokens["access"], "not-it", "a-new-Passw0rd-42")
    assert response.status_code == 400
    assert response.json()["code"] == "wrong_password"
    alice.refresh_from_db()
    assert alice.check_password(alice.raw_password)


@pytest.mark.parametrize("new", ["short", "12345678901", "password123", "alice1234"])
def test_password_validators_are_400_invalid_with_messages(alice, new):
    tokens = login(APIClient(), alice).json()
    response = change_password(tokens["access"], alice.raw_password, new)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["errors"]["new_password"]
    assert all(isinstance(m, str) and m for m in body["errors"]["new_password"])
    assert not AuthSession.objects.filter(revoked_at__isnull=False).exists()


def test_password_change_keeps_the_current_session_and_revokes_the_others(alice):
    other = login(APIClient(), alice).json()
    current = login(APIClient(), alice).json()
    response = change_password(
        current["access"], alice.raw_password, "a-new-Passw0rd-42"
    )
    assert response.status_code == 204
    assert bearer(current["access"]).get("/api/me").status_code == 200
    assert bearer(other["access"]).get("/api/me").json()["code"] == "revoked"
    refreshed = APIClient().post(
        "/api/auth/refresh", {"refresh": current["refresh"]}, format="json"
    )
    assert refreshed.status_code == 200
    alice.refresh_from_db()
    assert alice.check_password("a-new-Passw0rd-42")


def test_password_change_needs_a_bearer_token():
    response = APIClient().post(
        "/api/auth/password", {"old_password": "a", "new_password": "b"}, format="json"
    )
    assert response.status_code == 401


# --- password guessing (a stolen access token is not a password oracle) ------

NEW = "a-new-Passw0rd-42"


def me_code(token) -> int | str:
    response = bearer(token).get("/api/me")
    return (
        response.status_code if response.status_code == 200 else response.json()["code"]
    )


def test_password_change_is_throttled_per_user_right_and_wrong_alike(
    alice, bob, settings
):
    settings.AUTHSOCKET_PASSWORD_THROTTLE = "3/min"
    first, second = login(APIClient(), alice).json(), login(APIClient(), alice).json()
    answers = [
        change_password(first["access"], "not-it", NEW),
        change_password(second["access"], "not-it-either", NEW),  # same user
        change_password(first["access"], alice.raw_password, "short"),  # right, weak
    ]
    assert [r.status_code for r in answers] == [400, 400, 400]
    throttled = change_password(first["access"], alice.raw_password, NEW)
    assert throttled.status_code == 429
    assert throttled.json() == {
        "detail": throttled.json()["detail"],
        "code": "throttled",
    }
    assert int(throttled["Retry-After"]) > 0
    alice.refresh_from_db()
    assert alice.check_password(alice.raw_password)  # even the right one waits
    assert me_code(first["access"]) == me_code(second["access"]) == 200
    other_user = login(APIClient(), bob).json()
    assert change_password(other_user["access"], "not-it", NEW).status_code == 400


def test_ten_wrong_old_passwords_in_a_row_revoke_the_calling_session(alice, settings):
    settings.AUTHSOCKET_PASSWORD_THROTTLE = "100/min"
    other, caller = login(APIClient(), alice).json(), login(APIClient(), alice).json()
    for _ in range(9):
        assert change_password(caller["access"], "guess", NEW).status_code == 400
    assert me_code(caller["access"]) == 200
    tenth = change_password(caller["access"], "guess", NEW)
    assert tenth.json()["code"] == "wrong_password"
    assert me_code(caller["access"]) == "revoked"
    assert change_password(caller["access"], alice.raw_password, NEW).status_code == 401
    refreshed = APIClient().post(
        "/api/auth/refresh", {"refresh": caller["refresh"]}, format="json"
    )
    assert refreshed.json()["code"] == "revoked"
    assert me_code(other["access"]) == 200  # only the guessing session dies
    revoked = AuthSession.objects.get(revoked_at__isnull=False)
    assert revoked.revoke_reason == "password_guessing"
    alice.refresh_from_db()
    assert alice.check_password(alice.raw_password)


def test_a_right_old_password_resets_the_run_of_wrong_ones(alice, settings):
    settings.AUTHSOCKET_PASSWORD_THROTTLE = "100/min"
    caller = login(APIClient(), alice).json()
    for _ in range(9):
        assert change_password(caller["access"], "guess", NEW).status_code == 400
    weak = change_password(caller["access"], alice.raw_password, "short")
    assert weak.json()["code"] == "invalid"  # the old password was right
    for _ in range(9):
        assert change_password(caller["access"], "guess", NEW).status_code == 400
    assert me_code(caller["access"]) == 200
    change_password(caller["access"], "guess", NEW)
    assert me_code(caller["access"]) == "revoked"


def test_the_run_of_wrong_passwords_outlives_the_throttle_window(alice):
    """Under the default 5/min the tenth guess comes minutes later: still counted."""
    caller = login(APIClient(), alice).json()
    codes = [
        change_password(caller["access"], "guess", NEW).status_code for _ in range(6)
    ]
    assert codes == [400] * 5 + [429]
    cache.clear()  # the throttle's minute has passed
    for _ in range(4):
        assert change_password(caller["access"], "guess", NEW).status_code == 400
    assert me_code(caller["access"]) == 200  # nine wrong: the throttled one not counted
    change_password(caller["access"], "guess", NEW)
    assert me_code(caller["access"]) == "revoked"
