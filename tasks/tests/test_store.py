"""The step store's contract: append a step with the task's changes under the lease, get the
pause/cancel flags back, or LeaseLost with nothing written."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from tasks.leases import lease_acquire
from tasks.models import Step, Task
from tasks.services import task_pause
from tasks.signals import task_status_changed
from tasks.store import Flags, LeaseLost, step_append
from tasks.tests.waiting import assert_contiguous

pytestmark = pytest.mark.django_db


@pytest.fixture
def leased(user):
    """A task (its trigger step is step 0) leased by worker w1."""
    from tasks.services import task_create

    task = task_create(owner=user, query="q")
    return lease_acquire(task.pk, "w1")


def _expire(task: Task) -> None:
    Task.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_steps_are_appended_in_order_with_the_counters(leased):
    for kind in ("plan", "llm", "tool"):
        assert step_append(task=leased, step=Step(kind=kind), owner="w1") == Flags(False, False)
    row = Task.objects.get(pk=leased.pk)
    steps = assert_contiguous(row)
    assert [s.kind for s in steps] == ["trigger", "plan", "llm", "tool"]
    assert (row.step_count, leased.step_count) == (4, 4)
    assert row.total_steps >= 4 and row.lease_owner == "w1"


def test_changes_are_written_with_the_step_and_the_lease_renewed_or_released(leased, settings):
    settings.TASK_LEASE_SECONDS = 60
    step_append(task=leased, step=Step(kind="plan"), owner="w1", changes={"progress": 0.25, "total_steps": 9})
    row = Task.objects.get(pk=leased.pk)
    assert (row.progress, row.total_steps) == (0.25, 9)
    assert row.lease_expires_at > timezone.now() + timedelta(seconds=50), "renewed for TASK_LEASE_SECONDS"
    step_append(task=leased, step=Step(kind="result"), owner="w1", release=True,
                changes={"status": "completed", "result": "done"})
    row = Task.objects.get(pk=leased.pk)
    assert (row.status, row.result, row.lease_owner, row.lease_expires_at) == ("completed", "done", None, None)


def test_the_flags_come_back_with_the_commit(leased):
    Task.objects.filter(pk=leased.pk).update(pause_requested=True)
    assert step_append(task=leased, step=Step(kind="llm"), owner="w1") == Flags(True, False)
    Task.objects.filter(pk=leased.pk).update(cancel_requested=True)
    assert step_append(task=leased, step=Step(kind="llm"), owner="w1") == Flags(True, True)


def _refused(task: Task, owner: str | None) -> None:
    before = Task.objects.get(pk=task.pk)
    with pytest.raises(LeaseLost):
        step_append(task=task, step=Step(kind="llm"), owner=owner, changes={"progress": 0.5})
    after = Task.objects.get(pk=task.pk)
    assert Step.objects.filter(task=task).count() == before.step_count == after.step_count
    assert (after.progress, after.lease_owner, after.lease_expires_at) == (
        before.progress, before.lease_owner, before.lease_expires_at), "nothing written, the lease not revived"


def test_a_lease_taken_over_refuses_the_old_holder(leased):
    Task.objects.filter(pk=leased.pk).update(lease_owner="w2")
    _refused(leased, "w1")


def test_an_expired_lease_nobody_took_over_refuses_its_holder(leased):
    _expire(leased)
    _refused(leased, "w1")


def test_a_stale_view_of_the_log_is_refused(leased):
    stale = Task.objects.get(pk=leased.pk)
    step_append(task=leased, step=Step(kind="plan"), owner="w1")
    _refused(stale, "w1")


def test_a_service_cannot_append_while_a_worker_holds_a_live_lease(leased):
    _refused(leased, None)


def test_pause_on_an_expired_lease_writes_its_step_and_fences_the_old_holder(leased):
    _expire(leased)
    holder_view = Task.objects.get(pk=leased.pk)
    paused = task_pause(task=Task.objects.get(pk=leased.pk))
    assert (paused.status, paused.lease_owner) == ("paused", None)
    with pytest.raises(LeaseLost):
        step_append(task=holder_view, step=Step(kind="llm"), owner="w1")
    steps = assert_contiguous(Task.objects.get(pk=leased.pk))
    assert [s.kind for s in steps] == ["trigger", "pause"]


def test_the_log_refuses_a_second_step_at_an_index(leased):
    with pytest.raises(IntegrityError), transaction.atomic():
        Step.objects.create(task=leased, index=0, kind="plan")


def test_an_llm_step_counts_its_prompt_version_once(leased, agents_defaults):
    from prompts.models import PromptVersion

    version = PromptVersion.objects.filter(is_active=True).first()
    llm = Step(kind="llm", status="ok", tokens_in=10, tokens_out=4, duration_ms=30, context={"version_id": version.pk})
    step_append(task=leased, step=llm, owner="w1")
    Task.objects.filter(pk=leased.pk).update(lease_owner="w2")
    with pytest.raises(LeaseLost):
        step_append(task=leased, step=Step(kind="llm", status="error", context={"version_id": version.pk}),
                    owner="w1")
    version.refresh_from_db()
    assert (version.uses, version.successes, version.failures) == (1, 1, 0)
    assert (version.tokens_in_total, version.tokens_out_total, version.latency_ms_total) == (10, 4, 30)


def test_a_status_change_is_signalled_after_the_commit(leased, django_capture_on_commit_callbacks):
    seen = []

    def receiver(sender, task, status, **kwargs):
        seen.append((task.pk, status, Task.objects.get(pk=task.pk).status))

    task_status_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            step_append(task=leased, step=Step(kind="llm"), owner="w1", changes={"status": "running"})
        assert seen == [], "no change of status, no signal"
        with django_capture_on_commit_callbacks(execute=True):
            step_append(task=leased, step=Step(kind="error", status="error"), owner="w1", release=True,
                        changes={"status": "failed", "error": "x"})
            assert seen == [], "not before the commit"
    finally:
        task_status_changed.disconnect(receiver)
    assert seen == [(leased.pk, "failed", "failed")]
