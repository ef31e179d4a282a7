"""Accounts API views of issue 4: refresh cookie mode, sessions, password."""

import pytest
from django.conf import settings as django_settings
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
