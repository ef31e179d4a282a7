"""`manage.py mint_tokens --users N`: one session and access token per user.

For benchmarks and tests (docs/protocol.md §5): users `<prefix>0 … <prefix>N-1` are
created if missing (with an unusable password), and one access token per line
is printed on stdout. A token lives at most as long as its session
(AUTHSOCKET_REFRESH_TTL): past that it is refused anyway, and a far `exp` is
more than a ticket row can hold.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User
from accounts.services import session_open
from core.commands import unicode_text

USERNAME_MAX_LENGTH = User._meta.get_field("username").max_length


class Command(BaseCommand):
    help = "Create N users if missing, open a session each, print their access tokens."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, required=True)
        parser.add_argument("--prefix", default="bench", type=unicode_text)
        parser.add_argument(
            "--ttl",
            type=int,
            default=None,
            help="access token lifetime, s (at most AUTHSOCKET_REFRESH_TTL)",
        )

    def handle(self, *args, users: int, prefix: str, ttl: int | None, **options):
        if not 1 <= users <= 1_000_000:
            raise CommandError("--users must be between 1 and 1000000.")
        longest = settings.AUTHSOCKET_REFRESH_TTL
        if ttl is not None and not 1 <= ttl <= longest:
            raise CommandError(
                f"--ttl must be between 1 and {longest} seconds "
                "(AUTHSOCKET_REFRESH_TTL: a token cannot outlive its session)."
            )
        if len(prefix) + len(str(users - 1)) > USERNAME_MAX_LENGTH:
            raise CommandError(
                f"--prefix is too long: usernames are at most "
                f"{USERNAME_MAX_LENGTH} characters."
            )
        _check_username(f"{prefix}0")
        names = [f"{prefix}{i}" for i in range(users)]
        with transaction.atomic():
            # in_bulk splits its query under the database's parameter limit
            # (SQLite's is 32,766 on a stock build); `username__in` did not.
            existing = User.objects.in_bulk(names, field_name="username")
            _check_active(existing.values())
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


def _check_username(sample: str) -> None:
    """`bulk_create` skips validation: a prefix with a space, a slash or a
    control character would make users that no form accepts."""
    try:
        User.username_validator(sample)
    except ValidationError:
        raise CommandError(
            "--prefix may hold only letters, digits and @ . + - _"
        ) from None


def _check_active(users) -> None:
    """A deactivated user's token is refused at once: printing one would
    hand the benchmark a token that cannot work."""
    inactive = sorted(user.username for user in users if not user.is_active)
    if inactive:
        raise CommandError(
            f"{len(inactive)} of these users are deactivated (first: "
            f"{inactive[0]}): their tokens would be refused; use another --prefix."
        )


def _unusable_user(username: str) -> User:
    user = User(username=username)
    user.set_unusable_password()
    return user
