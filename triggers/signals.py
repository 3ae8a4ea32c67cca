"""A scheduled query's beat entry lives and dies with it (also on queryset and cascade deletes)."""

from __future__ import annotations

from django.db.models.signals import post_delete
from django.dispatch import receiver

from triggers.models import ScheduledQuery


@receiver(post_delete, sender=ScheduledQuery)
def delete_periodic_task(sender, instance: ScheduledQuery, **kwargs) -> None:
    if instance.periodic_task_id:
        from django_celery_beat.models import PeriodicTask

        PeriodicTask.objects.filter(pk=instance.periodic_task_id).delete()
