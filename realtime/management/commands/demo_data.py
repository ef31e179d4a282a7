"""`manage.py demo_data`: the demo users and rooms of docs/protocol.md §5 (idempotent).

It lives in realtime because it makes rooms; it may import accounts, never the
other way round.
"""

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from realtime.demo import demo_rooms_create

DEFAULT_PASSWORD = "authsocket-demo"
DEMO_USERS = ["alice", "bob", "carol"]


def _demo_password() -> str:
    """DEMO_PASSWORD as it is; bytes that are not UTF-8 are refused here,
    before a transaction that would fail on them."""
    password = os.environ.get("DEMO_PASSWORD", "")
    try:
        password.encode()
    except UnicodeEncodeError:
        raise CommandError("DEMO_PASSWORD is not valid UTF-8.") from None
    return password


class Command(BaseCommand):
    help = "Create the demo users (alice, bob, carol, admin) and rooms."

    def handle(self, *args, **options):
        password = given = _demo_password()
        if not password:
            if not settings.DEBUG:
                raise CommandError(
                    "Refusing to create demo users with a known password outside "
                    "debug mode: set DEMO_PASSWORD."
                )
            password = DEFAULT_PASSWORD
        with transaction.atomic():
            kept = sorted(
                get_user_model()
                .objects.filter(username__in=[*DEMO_USERS, "admin"])
                .values_list("username", flat=True)
            )
            users = {name: self._user(name, password) for name in DEMO_USERS}
            users["admin"] = self._user("admin", password, staff=True)
            demo_rooms_create(users=users)
        self.stdout.write(
            f"Demo users: {', '.join(users)} (password: "
            f"{'from DEMO_PASSWORD' if given else password})"
        )
        if kept:
            self.stdout.write(f"Already there, left unchanged: {', '.join(kept)}")

    def _user(self, username: str, password: str, staff: bool = False):
        """Create the user if missing; an existing one is left exactly as it is.

        An `admin` made with `createsuperuser` keeps its own password (changing
        it would also revoke every session of that user).
        """
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is not None:
            return user
        user = User(
            username=username,
            email=f"{username}@example.com",
            is_staff=staff,
            is_superuser=staff,
        )
        user.set_password(password)
        user.save()
        return user
