"""`manage.py demo_data` creates the demo users and rooms, idempotently."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.forms.models import model_to_dict

from accounts.models import User
from realtime.models import Membership, Room

pytestmark = pytest.mark.django_db


def members(slug: str) -> set[str]:
    return set(
        Membership.objects.filter(room__slug=slug).values_list(
            "user__username", flat=True
        )
    )


def test_demo_data_creates_lobby_team_and_secret_twice_the_same(monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "demo-password-for-tests")
    for _ in range(2):
        call_command("demo_data")
    assert list(Room.objects.values_list("slug", "public")) == [
        ("lobby", True),
        ("secret", False),
        ("team", False),
    ]
    assert members("lobby") == {"alice", "bob", "carol", "admin"}
    assert members("team") == {"alice", "bob"}
    assert members("secret") == {"alice"}
    assert Membership.objects.count() == 7


def test_demo_data_creates_what_is_missing_and_leaves_existing_users_alone(
    monkeypatch, open_session
):
    monkeypatch.setenv("DEMO_PASSWORD", "demo-password-for-tests")
    admin = User.objects.create_superuser("admin", "root@corp.test", "own-Passw0rd-1")
    User.objects.create_user("bob", password="bobs-own-pw-2", first_name="Bob")
    live = open_session(admin).session
    before = {
        user.username: model_to_dict(user) for user in User.objects.order_by("pk")
    }

    out = StringIO()
    call_command("demo_data", stdout=out)

    after = {user.username: model_to_dict(user) for user in User.objects.all()}
    assert after["admin"] == before["admin"]  # password hash, email, flags, names
    assert after["bob"] == before["bob"]
    admin.refresh_from_db()
    assert admin.check_password("own-Passw0rd-1")
    live.refresh_from_db()
    assert live.revoked_at is None  # a password change would have revoked it
    for name in ("alice", "carol"):
        assert User.objects.get(username=name).check_password("demo-password-for-tests")
    assert "left unchanged: admin, bob" in out.getvalue()
    assert members("lobby") == {"alice", "bob", "carol", "admin"}


def test_demo_data_never_prints_a_given_password(monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "demo-password-for-tests")
    out = StringIO()
    call_command("demo_data", stdout=out)
    assert "(password: from DEMO_PASSWORD)" in out.getvalue()
    assert "demo-password-for-tests" not in out.getvalue()


def test_demo_data_without_a_password_runs_only_in_debug(monkeypatch, settings):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEMO_PASSWORD"):
        call_command("demo_data")
    assert not User.objects.exists()
    settings.DEBUG = True
    out = StringIO()
    call_command("demo_data", stdout=out)
    assert "(password: authsocket-demo)" in out.getvalue()


def test_a_demo_password_that_is_not_utf8_is_refused_by_name(monkeypatch):
    """Bytes the OS could not decode: a UnicodeEncodeError traceback before."""
    monkeypatch.setenv("DEMO_PASSWORD", "p\udce4ss-word-1234")
    with pytest.raises(CommandError, match="DEMO_PASSWORD is not valid UTF-8"):
        call_command("demo_data")
    assert not User.objects.exists()
