"""Tasks belong to a workspace: each existing task moves to its owner's personal workspace."""

import django.db.models.deletion
from django.db import migrations, models

from workspaces.migration_support import mover


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0006_cost"),
        ("workspaces", "0002_personal_workspaces"),
    ]

    operations = [
        migrations.AddField(
            model_name="task",
            name="workspace",
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="tasks", to="workspaces.workspace"),
        ),
        migrations.RunPython(mover("tasks", "Task"), migrations.RunPython.noop),
        migrations.AlterField(
            model_name="task",
            name="workspace",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="tasks", to="workspaces.workspace"),
        ),
        migrations.AddIndex(
            model_name="task",
            index=models.Index(fields=["workspace", "-created_at"], name="task_workspace_created_idx"),
        ),
    ]
