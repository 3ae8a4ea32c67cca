"""A schedule keeps why its last run started no task (e.g. its owner may no longer start
tasks in its workspace, or an agent named in its options was disabled), and when."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("triggers", "0004_schedule_name_per_workspace"),
    ]

    operations = [
        migrations.AddField(
            model_name="scheduledquery",
            name="last_error",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.AddField(
            model_name="scheduledquery",
            name="last_error_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
