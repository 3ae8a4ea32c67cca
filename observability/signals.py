"""Receivers: a saved price is used at once in this process (others within PRICE_CACHE_SECONDS),
so is a saved model limit (others within LLM_LIMITS_REFRESH_SECONDS); a new task gets its
trace (observability/tracing.py)."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from observability import tracing
from observability.cost import prices
from observability.models import ModelLimit, ModelPrice


@receiver(post_save, sender=ModelPrice)
@receiver(post_delete, sender=ModelPrice)
def price_changed(sender, **kwargs) -> None:
    prices.invalidate()


@receiver(post_save, sender=ModelLimit)
@receiver(post_delete, sender=ModelLimit)
def limit_changed(sender, **kwargs) -> None:
    from tasks.limits import table

    table.invalidate()


@receiver(pre_save, sender="tasks.Task")
def task_trace(sender, instance, **kwargs) -> None:
    if instance._state.adding and not instance.trace_parent:
        instance.trace_parent = tracing.task_created(instance)
