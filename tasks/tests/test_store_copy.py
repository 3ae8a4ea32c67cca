"""The step store's bulk path (``steps_copy``): the service guard, contiguous indexes, the
steps' own created_at, and no prompt usage counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tasks.leases import lease_acquire
from tasks.models import Step, Task
from tasks.services import task_create
from tasks.store import LeaseLost, steps_copy
from tasks.tests.waiting import assert_contiguous

pytestmark = pytest.mark.django_db
WHEN = datetime(2025, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def steps(start: int, count: int, **fields) -> list[Step]:
    return [Step(index=index, kind="llm", agent="research", subtask_id="s1", input={"n": index},
                 output={"action": "finish", "result": str(index)}, created_at=WHEN + timedelta(seconds=index),
                 **fields) for index in range(start, start + count)]


def test_copied_steps_continue_the_log_with_their_own_times_and_the_task_changes(user):
    task = task_create(owner=user, query="q")
    steps_copy(task=task, steps=steps(1, 3), changes={"status": "paused", "progress": 0.5})
    row = Task.objects.get(pk=task.pk)
    copied = assert_contiguous(row)
    assert (row.status, row.progress, row.total_steps) == ("paused", 0.5, 4)
    assert [s.created_at for s in copied[1:]] == [WHEN + timedelta(seconds=i) for i in (1, 2, 3)]
    assert (task.step_count, task.status) == (4, "paused")  # the caller's instance follows


def test_refused_while_a_worker_holds_the_lease_or_when_the_log_moved_on(user):
    task = task_create(owner=user, query="q")
    lease_acquire(task.pk, "w1")
    with pytest.raises(LeaseLost):
        steps_copy(task=task, steps=steps(1, 2))
    Task.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    stale = Task.objects.get(pk=task.pk)
    stale.step_count = 0  # an out-of-date view of the log
    with pytest.raises(LeaseLost):
        steps_copy(task=stale, steps=steps(0, 2))
    assert Step.objects.filter(task=task).count() == 1
    steps_copy(task=Task.objects.get(pk=task.pk), steps=steps(1, 2))  # a lapsed lease is cleared
    row = Task.objects.get(pk=task.pk)
    assert (row.step_count, row.lease_owner) == (3, None)


def test_indexes_must_continue_the_log(user):
    task = task_create(owner=user, query="q")
    for wrong in (steps(0, 2), steps(2, 2), [*steps(1, 1), *steps(3, 1)]):
        with pytest.raises(ValueError):
            steps_copy(task=task, steps=wrong)
    assert Task.objects.get(pk=task.pk).step_count == 1


def test_copied_model_steps_count_no_prompt_use(agents_defaults, user):
    from prompts.models import PromptVersion

    version = PromptVersion.objects.get(template__slug="plan", is_active=True)
    task = task_create(owner=user, query="q")
    steps_copy(task=task, steps=[Step(index=1, kind="plan", context={"version_id": version.pk}, tokens_in=50,
                                      prompt_label=version.label, created_at=WHEN)])
    version.refresh_from_db()
    assert (version.uses, version.tokens_in_total) == (0, 0)
