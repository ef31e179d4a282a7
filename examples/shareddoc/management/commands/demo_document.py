from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from examples.shareddoc.models import Document


class Command(BaseCommand):
    help = 'The sample document "Plan", owned by alice, shared with bob (idempotent).'

    def handle(self, *args, **options):
        users = {
            user.username: user
            for user in get_user_model().objects.filter(username__in=["alice", "bob"])
        }
        if len(users) != 2:
            raise CommandError("alice and bob are missing: run `manage.py demo_data`.")
        document, _ = Document.objects.get_or_create(title="Plan", owner=users["alice"])
        document.collaborators.add(users["alice"], users["bob"])
        self.stdout.write(
            f'Document {document.pk} "{document.title}" (stream doc:{document.pk}), '
            "collaborators: alice, bob"
        )
