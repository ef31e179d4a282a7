"""`manage.py prune_credentials`: delete credentials nothing can use any more."""

from django.core.management.base import BaseCommand

from accounts.pruning import credentials_prune


class Command(BaseCommand):
    help = (
        "Delete expired WebSocket tickets, and the refresh tokens of sessions "
        "and the revocation log rows that ended AUTHSOCKET_CREDENTIAL_RETENTION "
        "seconds ago (a live session's tokens stay: they reveal a reuse)."
    )

    def handle(self, *args, **options):
        for what, count in credentials_prune().items():
            self.stdout.write(f"{what}: {count} deleted")
