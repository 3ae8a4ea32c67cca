"""Models: append-only steps, unique step indexes, agent step caps, idempotent defaults."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from tasks.defaults import load_defaults
from tasks.models import AgentSpec, AppendOnlyError, Step, Task

pytestmark = pytest.mark.django_db


def test_step_cannot_be_rewritten(user):
    task = Task.objects.create(owner=user, query="q")
    step = Step.objects.create(task=task, index=0, kind="plan")
    step.error = "rewritten"
    with pytest.raises(AppendOnlyError):
        step.save()
    assert Step.objects.get(pk=step.pk).error == ""


def test_step_index_is_unique_per_task(user):
    task = Task.objects.create(owner=user, query="q")
    Step.objects.create(task=task, index=0, kind="plan")
    with pytest.raises(IntegrityError), transaction.atomic():
        Step.objects.create(task=task, index=0, kind="llm")
    other = Task.objects.create(owner=user, query="q2")
    Step.objects.create(task=other, index=0, kind="plan")


def test_task_defaults(user, settings):
    task = Task.objects.create(owner=user, query="q")
    assert task.status == "queued"
    assert task.step_budget == settings.TASK_STEP_BUDGET


@pytest.mark.parametrize("steps", [2, 11])
def test_agent_max_steps_is_limited_in_forms_and_database(steps):
    agent = AgentSpec(name="x", description="d", prompt_slug="agent_research", max_steps=steps)
    with pytest.raises(ValidationError):
        agent.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        agent.save()


def test_load_defaults_is_idempotent_and_keeps_admin_edits():
    load_defaults()
    AgentSpec.objects.filter(name="research").update(max_steps=9, description="edited")
    summary = load_defaults()
    assert "0 agents created" in summary
    research = AgentSpec.objects.get(name="research")
    assert (research.max_steps, research.description) == (9, "edited")
    assert set(AgentSpec.objects.values_list("name", flat=True)) == {"research", "analysis", "synthesis"}
