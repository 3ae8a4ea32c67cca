"""Owned memory entries belong to their owner's personal workspace; shared ones to none."""

import django.db.models.deletion
from django.db import migrations, models

from workspaces.migration_support import mover


class Migration(migrations.Migration):
    dependencies = [
        ("memory", "0004_hnsw_halfvec"),
        ("workspaces", "0002_personal_workspaces"),
    ]

    operations = [
        migrations.AddField(
            model_name="memoryentry",
            name="workspace",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="memory_entries", to="workspaces.workspace"),
        ),
        migrations.RunPython(mover("memory", "MemoryEntry"), migrations.RunPython.noop),
    ]
