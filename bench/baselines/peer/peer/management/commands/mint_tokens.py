"""Creates users and prints simplejwt access tokens (authsocket's interface)."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework_simplejwt.tokens import AccessToken


class Command(BaseCommand):
    help = "Create <prefix>0..N-1 if missing and print one access JWT per line."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, required=True)
        parser.add_argument("--prefix", default="bench")
        parser.add_argument("--ttl", type=int, default=3600)

    def handle(self, *args, users, prefix, ttl, **options):
        for user in users_ensure(prefix=prefix, count=users):
            token = AccessToken.for_user(user)
            token.set_exp(lifetime=timedelta(seconds=ttl))
            self.stdout.write(str(token))


def users_ensure(*, prefix: str, count: int) -> list:
    """Returns the users <prefix>0..count-1, creating the missing ones at once."""
    user_model = get_user_model()
    names = [f"{prefix}{i}" for i in range(count)]
    existing = set(
        user_model.objects.filter(username__in=names).values_list("username", flat=True)
    )
    missing = [user_model(username=n) for n in names if n not in existing]
    for user in missing:
        user.set_unusable_password()
    user_model.objects.bulk_create(missing, batch_size=500)
    by_name = user_model.objects.in_bulk(names, field_name="username")
    return [by_name[n] for n in names]
