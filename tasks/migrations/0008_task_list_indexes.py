"""Indexes for many tasks, built concurrently (writes to tasks_task go on during the build).

- task_owner_active_idx: an owner's active tasks, counted for the fair priority of every
  run_task message (tasks/fairness.py); partial, so it holds only the few active rows.
- task_workspace_status_idx: a workspace's tasks in one status, newest first (the status
  filter of the dashboard and of GET /api/v1/tasks/).

None of them is on a column a step commit changes (status is indexed already), so step
commits stay HOT updates.
"""

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
        AddIndexConcurrently(
            model_name="task",
            index=models.Index(fields=["workspace", "status", "-created_at"], name="task_workspace_status_idx"),
        ),
    ]
