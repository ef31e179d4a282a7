"""`manage.py mint_tokens --users N`: one session and access token per user.

For benchmarks and tests (docs/protocol.md §5): users `<prefix>0 … <prefix>N-1` are
created if missing (with an unusable password), and one access token per line
is printed on stdout.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User
from accounts.services import session_open
from core.commands import unicode_text


class Command(BaseCommand):
    help = "Create N users if missing, open a session each, print their access tokens."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, required=True)
        parser.add_argument("--prefix", default="bench", type=unicode_text)
        parser.add_argument(
            "--ttl", type=int, default=None, help="access token lifetime, s"
        )

    def handle(self, *args, users: int, prefix: str, ttl: int | None, **options):
        if not 1 <= users <= 1_000_000:
            raise CommandError("--users must be between 1 and 1000000.")
        if ttl is not None and ttl < 1:
            raise CommandError("--ttl must be a positive number of seconds.")
        names = [f"{prefix}{i}" for i in range(users)]
        with transaction.atomic():
            existing = set(
                User.objects.filter(username__in=names).values_list(
                    "username", flat=True
                )
            )
            User.objects.bulk_create(
                [_unusable_user(name) for name in names if name not in existing]
            )
        by_name = User.objects.in_bulk(names, field_name="username")
        with transaction.atomic():
            lines = [
                session_open(
                    user=by_name[name], user_agent="mint_tokens", access_ttl=ttl
                ).access
                for name in names
            ]
        self.stdout.write("\n".join(lines))


def _unusable_user(username: str) -> User:
    user = User(username=username)
    user.set_unusable_password()
    return user
