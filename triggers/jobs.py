"""Celery jobs of the triggers app: thin wrappers around one service each."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

logger = logging.getLogger(__name__)


@shared_task(name="triggers.jobs.run_scheduled_query", ignore_result=True)
def run_scheduled_query(schedule_id: int) -> str | None:
    from triggers.schedules import scheduled_query_run

    task = scheduled_query_run(schedule_id=schedule_id)
    return str(task.pk) if task else None


@shared_task(name="triggers.jobs.deliver_callback", bind=True, ignore_result=True, max_retries=None)
def deliver_callback(self, task_id: str, delivery_id: str, url: str, event: str, body: str) -> bool:
    """POST one event; on a retryable failure, try again later with exponential backoff."""
    from triggers.callbacks import callback_attempt, retry_delay

    attempt = self.request.retries + 1
    outcome = callback_attempt(task_id=task_id, delivery_id=delivery_id, url=url, event=event, body=body,
                               attempt=attempt, max_attempts=settings.CALLBACK_MAX_ATTEMPTS)
    if outcome.retry:
        # Celery's retry re-publishes the same message with a countdown: the wait happens in
        # the broker, not in a sleeping worker thread.
        raise self.retry(countdown=retry_delay(attempt))
    if not outcome.ok:
        logger.warning("callback %s (%s) for task %s gave up after attempt %s: %s", delivery_id, event, task_id,
                       attempt, outcome.error)
    return outcome.ok


@shared_task(name="triggers.jobs.prune_webhook_deliveries", ignore_result=True)
def prune_webhook_deliveries() -> int:
    """Beat, every few minutes: forget deliveries older than the signature tolerance."""
    from triggers.services import webhook_deliveries_prune

    return webhook_deliveries_prune()
