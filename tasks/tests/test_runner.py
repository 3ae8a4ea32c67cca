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
