"""Owned datasets and eval runs belong to their owner's personal workspace; shipped datasets
and command-line runs (no owner) to none."""

import django.db.models.deletion
from django.db import migrations, models

from workspaces.migration_support import mover


class Migration(migrations.Migration):
    dependencies = [
        ("evals", "0001_initial"),
        ("workspaces", "0002_personal_workspaces"),
    ]

    operations = [
        migrations.AddField(
            model_name="dataset",
            name="workspace",
            field=models.ForeignKey(blank=True, help_text="Empty for shipped datasets.", null=True,
                                    on_delete=django.db.models.deletion.PROTECT, related_name="datasets",
                                    to="workspaces.workspace"),
        ),
        migrations.AddField(
            model_name="evalrun",
            name="workspace",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="eval_runs", to="workspaces.workspace"),
        ),
        migrations.RunPython(mover("evals", "Dataset"), migrations.RunPython.noop),
        migrations.RunPython(mover("evals", "EvalRun"), migrations.RunPython.noop),
    ]
