"""`manage.py demo_data` creates the rooms of docs/protocol.md §5, idempotently."""

import pytest
from django.core.management import call_command

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
