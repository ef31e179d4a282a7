"""Prints placeholder tokens: this baseline reads none, but URLs keep their size."""

import secrets

from django.core.management.base import BaseCommand

# A typical authsocket access token is about this long; the query string of
# the baseline's handshake should weigh the same.
PLACEHOLDER_CHARS = 300


class Command(BaseCommand):
    help = "Print one placeholder token per line (same interface as authsocket's)."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, required=True)
        parser.add_argument("--prefix", default="bench")
        parser.add_argument("--ttl", type=int, default=3600)

    def handle(self, *args, users, prefix, ttl, **options):
        for _ in range(users):
            self.stdout.write(secrets.token_urlsafe(PLACEHOLDER_CHARS * 3 // 4))
