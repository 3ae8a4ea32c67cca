"""Provider faults: a task waits out an outage (status waiting_provider, provider_wait steps,
Task.provider_error), a failed task can be retried (retry steps), and a step says when its
token counts are estimated (the provider reported no usage)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tasks', '0003_step_and_task_index_trim'),
    ]

    operations = [
        migrations.AddField(
            model_name='step',
            name='tokens_estimated',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='task',
            name='provider_error',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='step',
            name='kind',
            field=models.CharField(choices=[('trigger', 'Trigger'), ('plan', 'Plan'), ('llm', 'Llm'), ('tool', 'Tool'), ('human_request', 'Human Request'), ('human_response', 'Human Response'), ('summary', 'Summary'), ('synthesis', 'Synthesis'), ('pause', 'Pause'), ('resume', 'Resume'), ('cancel', 'Cancel'), ('error', 'Error'), ('result', 'Result'), ('provider_wait', 'Provider Wait'), ('retry', 'Retry')], max_length=16),
        ),
        migrations.AlterField(
            model_name='task',
            name='status',
            field=models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('paused', 'Paused'), ('waiting_human', 'Waiting Human'), ('waiting_provider', 'Waiting Provider'), ('completed', 'Completed'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], default='queued', max_length=16),
        ),
    ]
