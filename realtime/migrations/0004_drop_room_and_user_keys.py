"""Drop the room/recipient keys and old counters that 0003 carried over."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("realtime", "0003_messages_by_stream_name"),
    ]

    operations = [
        migrations.RemoveField(model_name="message", name="room"),
        migrations.RemoveField(model_name="message", name="recipient"),
        migrations.RemoveField(model_name="room", name="last_message_id"),
        migrations.DeleteModel(name="UserStream"),
        migrations.AlterField(
            model_name="message",
            name="created_at",
            field=models.DateTimeField(
                db_index=True, default=django.utils.timezone.now
            ),
        ),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.UniqueConstraint(
                fields=("stream", "seq"), name="message_stream_seq_unique"
            ),
        ),
    ]
