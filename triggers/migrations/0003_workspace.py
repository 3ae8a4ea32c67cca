"""Webhooks and schedules belong to a workspace: each moves to its owner's personal one."""

import django.db.models.deletion
from django.db import migrations, models

from workspaces.migration_support import mover


def _field(related_name: str, null: bool):
    return models.ForeignKey(null=null, on_delete=django.db.models.deletion.PROTECT, related_name=related_name,
                             to="workspaces.workspace")


class Migration(migrations.Migration):
    dependencies = [
        ("triggers", "0002_webhookdelivery"),
        ("workspaces", "0002_personal_workspaces"),
    ]

    operations = [
        migrations.AddField(model_name="webhook", name="workspace", field=_field("webhooks", True)),
        migrations.AddField(model_name="scheduledquery", name="workspace", field=_field("schedules", True)),
        migrations.RunPython(mover("triggers", "Webhook"), migrations.RunPython.noop),
        migrations.RunPython(mover("triggers", "ScheduledQuery"), migrations.RunPython.noop),
        migrations.AlterField(model_name="webhook", name="workspace", field=_field("webhooks", False)),
        migrations.AlterField(model_name="scheduledquery", name="workspace", field=_field("schedules", False)),
    ]
