"""A schedule's name is unique in its workspace, no longer across the installation, so one
team's names neither block nor reveal another's. Existing names were globally unique, so
they stay valid."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("triggers", "0003_workspace"),
    ]

    operations = [
        migrations.AlterField(
            model_name="scheduledquery",
            name="name",
            field=models.CharField(help_text="Unique in its workspace.", max_length=100),
        ),
        migrations.AddConstraint(
            model_name="scheduledquery",
            constraint=models.UniqueConstraint(fields=("workspace", "name"), name="scheduled_query_name_unique"),
        ),
    ]
