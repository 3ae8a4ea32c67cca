"""Rollouts in the admin: start one, see each arm's figures and feedback, promote, stop;
feedback beside each version's success rate in the version list."""

from __future__ import annotations

import pytest
from django.urls import reverse

from evals.services import task_feedback_set
from prompts.models import PromptRollout
from prompts.rollouts import prompt_rollout_start
from prompts.services import prompt_version_create, prompt_version_record_use
from tasks.models import Step, Task


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def candidate(template, version):
    return prompt_version_create(template=template, body="Hi {{ name }}.", note="shorter")


def test_start_a_rollout_from_the_admin(staff, version, candidate):
    url = reverse("admin:prompts_promptrollout_add")
    refused = staff.post(url, {"candidate": version.pk, "weight": 10})
    assert refused.status_code == 200 and not PromptRollout.objects.exists()  # the active version is no candidate
    response = staff.post(url, {"candidate": candidate.pk, "weight": 10, "min_uses": 30})
    assert response.status_code == 302, response.content.decode()[:2000]
    rollout = PromptRollout.objects.get()
    assert (rollout.candidate, rollout.active_version, rollout.weight, rollout.min_uses) == (candidate, version, 10, 30)
    assert rollout.failure_margin == 0.1 and rollout.started_by.username == "staff"
    again = staff.post(url, {"candidate": candidate.pk, "weight": 20})
    assert again.status_code == 200 and "already has a running rollout" in again.content.decode()


def test_arms_with_feedback_then_promote_and_stop(staff, staff_user, user, version, candidate):
    rollout = prompt_rollout_start(candidate=candidate, weight=50)
    prompt_version_record_use(version_id=candidate.pk, success=False, tokens_in=10, tokens_out=10, latency_ms=100)
    task = Task.objects.create(owner=user, query="q", status="completed")
    Step.objects.create(task=task, index=0, kind="llm", prompt_label=candidate.label)
    task_feedback_set(user=user, task=task, rating=-1)
    page = staff.get(reverse("admin:prompts_promptrollout_change", args=[rollout.pk])).content.decode()
    assert "candidate: greet@2: 1 uses · success 0.0% · failures 100.0% · 20 tokens · 100 ms · 👍 0 · 👎 1" in page
    listing = staff.get(reverse("admin:prompts_promptrollout_changelist")).content.decode()
    assert "greet@1: 0 uses" in listing
    staff.post(reverse("admin:prompts_promptrollout_changelist"),
               {"action": "promote_selected", "_selected_action": [rollout.pk]})
    rollout.refresh_from_db()
    candidate.refresh_from_db()
    assert rollout.status == "promoted" and candidate.is_active
    third = prompt_version_create(template=candidate.template, body="Yo {{ name }}.")
    second = prompt_rollout_start(candidate=third, weight=5)
    staff.post(reverse("admin:prompts_promptrollout_changelist"),
               {"action": "stop_selected", "_selected_action": [second.pk]})
    second.refresh_from_db()
    assert second.status == "stopped" and second.stop_reason == "stopped by staff"


def test_version_list_shows_feedback_beside_the_success_rate(staff, user, version, candidate):
    for rating, label in [(1, version.label), (-1, version.label), (-1, candidate.label)]:
        task = Task.objects.create(owner=user, query="q", status="completed")
        Step.objects.create(task=task, index=0, kind="llm", prompt_label=label)
        Step.objects.create(task=task, index=1, kind="llm", prompt_label=label)
        task_feedback_set(user=user, task=task, rating=rating)
    response = staff.get(reverse("admin:prompts_promptversion_changelist"))
    rows = {version.label: version for version in response.context["cl"].result_list}
    assert (rows["greet@1"].feedback_up, rows["greet@1"].feedback_down) == (1, 1)
    assert (rows["greet@2"].feedback_up, rows["greet@2"].feedback_down) == (0, 1)
    assert "1 / 1" in response.content.decode()
