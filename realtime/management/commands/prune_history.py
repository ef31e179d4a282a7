"""`manage.py prune_history`: apply each stream kind's history retention."""

from django.core.management.base import BaseCommand

from realtime.history import history_prune


class Command(BaseCommand):
    help = (
        "Delete stored messages older than, or beyond the count, that their "
        "stream kind keeps (AUTHSOCKET_HISTORY_MAX_AGE / _MAX_PER_STREAM)."
    )

    def handle(self, *args, **options):
        pruned = history_prune()
        for kind, count in pruned.items():
            self.stdout.write(f"{kind}: {count} message(s) pruned")
