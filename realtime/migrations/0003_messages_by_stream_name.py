"""Key messages and counters by the full stream name, keeping every id.

Room messages become `room:<slug>`, user messages `user:<id>`, and each
stream's counter carries over (`Room.last_message_id`, `UserStream`), so a
client resubscribing with `since` sees no `reset`. The old columns go in 0004.
"""

from django.conf import settings
from django.db import migrations, models
from django.db.models import Max

ROOM_PREFIX, USER_PREFIX = "room:", "user:"
BATCH = 1000


def forward(apps, schema_editor):
    Room = apps.get_model("realtime", "Room")
    UserStream = apps.get_model("realtime", "UserStream")
    Message = apps.get_model("realtime", "Message")
    StreamCounter = apps.get_model("realtime", "StreamCounter")
    counters = {}
    for room in Room.objects.order_by("pk").iterator():
        name = f"{ROOM_PREFIX}{room.slug}"
        Message.objects.filter(room_id=room.pk).update(stream=name)
        counters[name] = room.last_message_id
    for stream in UserStream.objects.order_by("pk").iterator():
        counters[f"{USER_PREFIX}{stream.user_id}"] = stream.last_message_id
    recipients = Message.objects.filter(recipient__isnull=False)
    for user_id in recipients.values_list("recipient_id", flat=True).distinct():
        name = f"{USER_PREFIX}{user_id}"
        Message.objects.filter(recipient_id=user_id).update(stream=name)
        counters.setdefault(name, 0)
    # A counter below a stored id would number a message twice: never.
    highest = Message.objects.values("stream").annotate(top=Max("seq"))
    for row in highest:
        counters[row["stream"]] = max(counters.get(row["stream"], 0), row["top"])
    StreamCounter.objects.bulk_create(
        [StreamCounter(stream=name, last_message_id=n) for name, n in counters.items()],
        batch_size=BATCH,
    )
    _check_constraints_now(schema_editor)


def backward(apps, schema_editor):
    """Rooms and users get their messages and counters back; other kinds go."""
    Room = apps.get_model("realtime", "Room")
    UserStream = apps.get_model("realtime", "UserStream")
    Message = apps.get_model("realtime", "Message")
    StreamCounter = apps.get_model("realtime", "StreamCounter")
    User = apps.get_model(settings.AUTH_USER_MODEL)
    for room in Room.objects.order_by("pk").iterator():
        name = f"{ROOM_PREFIX}{room.slug}"
        Message.objects.filter(stream=name).update(room_id=room.pk)
        counter = StreamCounter.objects.filter(stream=name).first()
        Room.objects.filter(pk=room.pk).update(
            last_message_id=counter.last_message_id if counter else 0
        )
    users = set(User.objects.values_list("pk", flat=True))
    for counter in StreamCounter.objects.filter(stream__startswith=USER_PREFIX):
        user_id = counter.stream.removeprefix(USER_PREFIX)
        if not user_id.isdigit() or int(user_id) not in users:
            continue
        Message.objects.filter(stream=counter.stream).update(recipient_id=int(user_id))
        UserStream.objects.create(
            user_id=int(user_id), last_message_id=counter.last_message_id
        )
    Message.objects.filter(room__isnull=True, recipient__isnull=True).delete()
    _check_constraints_now(schema_editor)


def _check_constraints_now(schema_editor) -> None:
    """PostgreSQL refuses to ALTER a table with deferred checks still pending."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):
    dependencies = [
        ("realtime", "0002_idempotent_publish"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="message", name="message_one_stream"),
        migrations.RemoveConstraint(
            model_name="message", name="message_room_seq_unique"
        ),
        migrations.RemoveConstraint(
            model_name="message", name="message_recipient_seq_unique"
        ),
        migrations.CreateModel(
            name="StreamCounter",
            fields=[
                (
                    "stream",
                    models.CharField(max_length=128, primary_key=True, serialize=False),
                ),
                ("last_message_id", models.PositiveBigIntegerField(default=0)),
            ],
        ),
        migrations.AddField(
            model_name="message",
            name="stream",
            field=models.CharField(default="", max_length=128),
            preserve_default=False,
        ),
        migrations.RunPython(forward, backward),
    ]
