"""A scheduled query's beat entry lives and dies with it (also on queryset and cascade deletes);
a task's status changes reach its callback URL."""

from __future__ import annotations

from django.db.models.signals import post_delete
from django.dispatch import receiver

from tasks.signals import task_status_changed
from triggers.models import ScheduledQuery


@receiver(post_delete, sender=ScheduledQuery)
def delete_periodic_task(sender, instance: ScheduledQuery, **kwargs) -> None:
    if instance.periodic_task_id:
        from django_celery_beat.models import PeriodicTask

        PeriodicTask.objects.filter(pk=instance.periodic_task_id).delete()


@receiver(task_status_changed)
def notify_callback(sender, task, status: str, **kwargs) -> None:
    """A task's new status (sent by the step store after the commit) goes to its callback URL."""
    if task.callback_url:
        from triggers.services import task_status_changed as callback_for_status

        callback_for_status(task_id=task.pk, status=status)
