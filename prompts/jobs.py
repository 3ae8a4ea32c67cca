"""Celery jobs of the prompts app (discovered as ``<app>.jobs``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="prompts.check_rollouts", ignore_result=True)
def check_rollouts() -> int:
    """Celery beat, every PROMPT_ROLLOUT_CHECK_INTERVAL seconds: the automatic stop of
    rollouts whose usage counters were written without prompt_version_record_use."""
    from prompts.rollouts import prompt_rollouts_check_all

    return prompt_rollouts_check_all()
