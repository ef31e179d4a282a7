"""Store what a server publish answered with its Idempotency-Key.

A repeat is answered from it, so a message pruned by its kind's retention
within the day is not published again; the message link then turns null.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("realtime", "0004_drop_room_and_user_keys"),
    ]

    operations = [
        migrations.AddField(
            model_name="idempotentpublish",
            name="answer",
            field=models.JSONField(null=True),
        ),
        migrations.AlterField(
            model_name="idempotentpublish",
            name="message",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="realtime.message",
            ),
        ),
    ]
