"""`manage.py notify <username> <text>` (docs/protocol.md §5)."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.commands import unicode_text
from realtime.messages import InvalidData
from realtime.publish import publish_to_user


class Command(BaseCommand):
    help = "Store {'text': TEXT} on a user's private stream and deliver it live."

    def add_arguments(self, parser):
        parser.add_argument("username", type=unicode_text)
        parser.add_argument("text", type=unicode_text)

    def handle(self, *args, username: str, text: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        try:
            message = publish_to_user(user=user, data={"text": text})
        except InvalidData as exc:  # over AUTHSOCKET_MAX_MESSAGE_BYTES, or a NUL
            raise CommandError(str(exc)) from None
        self.stdout.write(f"stored as user stream message {message.seq}")
        if not settings.REDIS_URL:
            self.stderr.write(
                "REDIS_URL is not set: no server process can be reached live; "
                "the message is stored and replayable with `since`."
            )
