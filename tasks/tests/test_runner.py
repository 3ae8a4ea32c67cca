"""The runner's contract: every action ends as a committed step, whatever executing it raised."""

from __future__ import annotations

import pytest

from tasks.runner import run_slice
from tasks.services import task_create
from tasks.tests.waiting import assert_contiguous

pytestmark = pytest.mark.django_db


class BrokenProvider:
    def complete(self, request):
        raise RuntimeError("boom\nsecond line")


def test_an_unexpected_exception_becomes_an_error_step_and_the_task_stops_with_a_reason(
        agents_defaults, user, monkeypatch):
    import tasks.execution

    monkeypatch.setattr(tasks.execution, "get_provider", BrokenProvider)
    task = task_create(owner=user, query="compute 12 * 7")
    for _ in range(20):
        if run_slice(task.id, worker_id="w1").outcome != "continue":
            break
    task.refresh_from_db()
    steps = assert_contiguous(task)
    plan = steps[1]
    assert (plan.kind, plan.status, plan.error) == ("plan", "error", "internal_error: RuntimeError: boom")
    assert task.status == "failed" and task.error, "the task does not stay running without a visible reason"
    assert task.lease_owner is None


def test_a_running_rollout_serves_its_candidate_to_the_tasks_in_its_share(agents_defaults, user):
    """Weighted rollout reaches the runner: with the candidate at 100 % every plan step of a
    new task renders the candidate; once the rollout is stopped, the active version again."""
    from django.db import transaction

    from prompts.models import PromptTemplate
    from prompts.rollouts import prompt_rollout_start, prompt_rollout_stop
    from prompts.services import prompt_version_create

    template = PromptTemplate.objects.get(slug="plan")
    active = template.versions.get(is_active=True)
    candidate = prompt_version_create(template=template, body=active.body + "\n", note="candidate")
    with transaction.atomic():
        rollout = prompt_rollout_start(candidate=candidate, weight=100)

    def plan_label(query: str) -> str:
        task = task_create(owner=user, query=query)
        run_slice(task.id, worker_id="w1")
        return task.steps.get(kind="plan").prompt_label

    assert plan_label("compute 12 * 7") == f"plan@{candidate.number}"
    with transaction.atomic():
        prompt_rollout_stop(rollout=rollout, reason="enough")
    assert plan_label("compute 3 * 4") == f"plan@{active.number}"
