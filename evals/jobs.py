"""Celery jobs of the evals app (discovered as ``<app>.jobs``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="evals.run_eval", acks_late=True, ignore_result=True)
def run_eval(run_id: int) -> int:
    """One of a run's ``concurrency`` workers: evaluate pending items until none is left."""
    from evals.execution import eval_run_work

    return eval_run_work(run_id=run_id)
