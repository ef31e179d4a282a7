"""`manage.py service_key create|list|revoke`: keys for the server API.

`create` prints the key once, on stdout, and never again: only its digest
is stored. `list` shows names and prefixes, never a key: one key a line.
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.errors import ServiceKeyNameTaken
from accounts.models import ServiceKey
from accounts.service_keys import service_key_create, service_key_revoke
from core.commands import unicode_text

MAX_NAME_LENGTH = ServiceKey._meta.get_field("name").max_length


class Command(BaseCommand):
    help = "Create, list or revoke service keys of the server API (/api/server/)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="create a key; prints it once")
        create.add_argument("name", type=unicode_text)
        actions.add_parser("list", help="list keys (names and prefixes only)")
        revoke = actions.add_parser("revoke", help="revoke the live key of a name")
        revoke.add_argument("name", type=unicode_text)

    def handle(self, *args, action: str, name: str = "", **options):
        if action == "create":
            self._create(name)
        elif action == "list":
            self._list()
        else:
            self._revoke(name)

    def _create(self, name: str) -> None:
        try:
            _, raw = service_key_create(name=name)
        except ValidationError as exc:
            raise CommandError(
                f"A name is 1 to {MAX_NAME_LENGTH} printable characters, without "
                f"leading or trailing spaces: {' '.join(exc.messages)}"
            ) from None
        except ServiceKeyNameTaken:
            raise CommandError(
                f"A live key named {name!r} exists; revoke it or pick another name."
            ) from None
        self.stderr.write(f"Service key {name!r} created. It is shown only once:")
        self.stdout.write(raw)

    def _list(self) -> None:
        for key in ServiceKey.objects.order_by("name", "-created_at"):
            state = (
                f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "live"
            )
            used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
            self.stdout.write(
                f"{one_line(key.name)}\t{key.prefix}…\tcreated {key.created_at:%Y-%m-%d %H:%M}"
                f"\tlast used {used}\t{state}"
            )

    def _revoke(self, name: str) -> None:
        if not service_key_revoke(name=name):
            raise CommandError(f"No live key named {name!r}.")
        self.stdout.write(f"Revoked {name!r}.")


def one_line(name: str) -> str:
    """`name` with its unprintable characters escaped (`\\n`, `\\x1b`): a name
    stored before they were refused still lists on one line."""
    if name.isprintable():
        return name
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in name
    )
