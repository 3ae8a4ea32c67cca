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
