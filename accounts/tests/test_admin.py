"""The admin: users with sessions, the revoke action, the sessions list."""

import pytest

from accounts.models import AuthSession
from tests.api import run_action

pytestmark = pytest.mark.django_db(transaction=True)


def test_user_page_shows_the_sessions_inline(admin_client, alice, open_session):
    tokens = open_session(alice)
    response = admin_client.get(f"/admin/accounts/user/{alice.pk}/change/")
    assert response.status_code == 200
    assert tokens.session.sid in response.content.decode()


def test_login_sessions_are_not_named_like_djangos_sessions(admin_client):
    index = admin_client.get("/admin/").content.decode()
    assert "Login sessions" in index
    assert ">Sessions<" not in index


def test_revoke_action_revokes_the_users_sessions(
    admin_client, alice, bob, open_session
):
    alice_sessions = [open_session(alice).session for _ in range(2)]
    bob_session = open_session(bob).session
    response = run_action(
        admin_client, "/admin/accounts/user/", "revoke_sessions", [alice.pk]
    )
    assert "Revoked 2 session(s)." in response.content.decode()
    for session in alice_sessions:
        session.refresh_from_db()
        assert session.revoked_at is not None and session.revoke_reason == "admin"
    bob_session.refresh_from_db()
    assert bob_session.revoked_at is None


def test_sessions_admin_lists_filters_searches_and_revokes(
    admin_client, alice, bob, open_session
):
    keep, revoke = open_session(alice).session, open_session(bob).session
    keep.sid = "xBoBx" + keep.sid[5:]  # bob's letters inside alice's session id
    keep.save(update_fields=["sid"])
    listing = admin_client.get("/admin/accounts/authsession/?q=bob&state=live")
    assert listing.status_code == 200
    assert f"{revoke.sid[:8]}" in listing.content.decode()
    assert f"{keep.sid[:8]}" not in listing.content.decode()
    run_action(admin_client, "/admin/accounts/authsession/", "revoke", [revoke.pk])
    assert AuthSession.objects.get(pk=revoke.pk).revoked_at is not None
    assert AuthSession.objects.get(pk=keep.pk).revoked_at is None
    revoked = admin_client.get("/admin/accounts/authsession/?state=revoked")
    assert f"{revoke.sid[:8]}" in revoked.content.decode()


def test_sessions_admin_finds_a_session_by_the_prefix_it_shows(
    admin_client, alice, open_session
):
    wanted, other = open_session(alice).session, open_session(alice).session
    listing = admin_client.get(f"/admin/accounts/authsession/?q={wanted.sid[:8]}")
    assert f"{wanted.sid[:8]}" in listing.content.decode()
    assert f"{other.sid[:8]}" not in listing.content.decode()
