"""Celery jobs of the tasks app: thin wrappers around the runner (discovered as ``<app>.jobs``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="tasks.run_task", acks_late=True, ignore_result=True)
def run_task(task_id: str) -> str:
    """Run one slice of the task's steps; the slice re-enqueues the task when it has more to do."""
    from tasks.runner import run_slice

    return run_slice(task_id).outcome


@shared_task(name="tasks.requeue_expired_leases", ignore_result=True)
def requeue_expired_leases() -> int:
    """Celery beat, every TASK_REQUEUE_INTERVAL seconds: take over tasks of crashed workers."""
    from tasks.leases import requeue_expired_leases as requeue

    return len(requeue())


@shared_task(name="tasks.remember_results", ignore_result=True)
def remember_results() -> int:
    """Celery beat, every minute: store in memory the results of tasks completed in the last
    hour that have no entry yet (their worker stopped between the result step's commit and
    the memory write)."""
    import logging

    from tasks.execution import results_to_remember, task_result_remember

    missing = results_to_remember()
    for task_id in missing:
        try:
            task_result_remember(task_id=task_id)
        except Exception:  # one refused entry must not keep the others out; tried again next minute
            logging.getLogger(__name__).warning("could not store the result of task %s in memory", task_id,
                                                exc_info=True)
    return len(missing)
