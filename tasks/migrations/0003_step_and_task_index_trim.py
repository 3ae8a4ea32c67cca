"""Fewer index writes per committed step.

- task_active_lease_idx indexed lease_expires_at, which every step commit renews: each
  renewal was a non-HOT update writing an entry into every index of tasks_task.
- tasks_step.task_id had its own index besides step_task_index_unique (task_id, index).
- fillfactor 70 on tasks_task leaves room in each page for HOT updates of its rows.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tasks', '0002_step_kind_trigger'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='task',
            name='task_active_lease_idx',
        ),
        migrations.AlterField(
            model_name='step',
            name='task',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='steps', to='tasks.task'),
        ),
        migrations.RunSQL("ALTER TABLE tasks_task SET (fillfactor = 70)", "ALTER TABLE tasks_task RESET (fillfactor)"),
    ]
