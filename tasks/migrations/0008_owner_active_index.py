"""An owner's active tasks, counted for the fair priority of every run_task message
(tasks/fairness.py). Built concurrently: writes to tasks_task go on during the build."""

from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tasks", "0007_workspace"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="task",
            index=models.Index(condition=models.Q(("status__in", ["queued", "running", "waiting_provider"])),
                               fields=["owner"], name="task_owner_active_idx"),
        ),
    ]
