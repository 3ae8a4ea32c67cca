"""Durability: a SIGKILLed worker's task finishes on another worker with every step once;
two runners racing for one task never both commit; the beat job takes over lost tasks."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from memory.models import MemoryEntry
from tasks.leases import requeue_expired_leases
from tasks.models import Step, Task
from tasks.runner import run_slice
from tasks.services import task_create
from tasks.tests.waiting import assert_contiguous, wait_status, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CRASH_QUERY = "Research the history of PostgreSQL, compute the average of 12, 15 and 30, and save a summary of both"


def test_worker_killed_mid_run_task_completes_with_each_step_once(agents_defaults, user, make_worker, make_beat):
    env = {"OFFLINE_LLM_LATENCY_MS": 300, "TASK_LEASE_SECONDS": 2, "TASK_REQUEUE_INTERVAL": 1}
    first = make_worker(**env)
    make_beat(**env)
    task = task_create(owner=user, query=CRASH_QUERY)
    wait_until(lambda: Step.objects.filter(task=task).count() >= 4, 60, 0.02, "four committed steps")
    first.kill()
    killed_at = Step.objects.filter(task=task).count()
    time.sleep(0.5)
    assert Step.objects.filter(task=task).count() == killed_at, "a killed worker commits nothing more"
    make_worker(**env)
    wait_status(task, "completed", "failed", timeout=90)
    assert task.status == "completed", task.error
    steps = assert_contiguous(task)  # indexes 0..N-1, each exactly once
    assert len(steps) > killed_at
    stores = [s for s in steps if s.kind == "tool" and s.input["tool"] == "memory_store"]
    assert len(stores) == 1 and stores[0].status == "ok"
    key = stores[0].input["idempotency_key"]
    assert key == f"{task.id}:{stores[0].index}"
    # The side effect happened once for its key, and once in total for this task.
    assert MemoryEntry.objects.filter(idempotency_key=key).count() == 1
    assert MemoryEntry.objects.filter(source_task_id=task.id, kind="note").count() == 1


def test_two_runners_racing_never_both_commit(agents_defaults, user, settings):
    settings.OFFLINE_LLM_LATENCY_MS = 700
    settings.TASK_LEASE_SECONDS = 30
    settings.TASK_SLICE_STEPS = 2
    task = task_create(owner=user, query=CRASH_QUERY)
    results = {}

    def runner(name: str) -> None:
        try:
            results[name] = run_slice(task.id, worker_id=f"runner-{name}")
        finally:
            connection.close()

    first = threading.Thread(target=runner, args=("a",))
    first.start()
    wait_until(lambda: Task.objects.filter(pk=task.pk, lease_owner="runner-a").exists(), 10, 0.01, "lease of a")
    time.sleep(0.1)  # a is inside its plan call
    # Force the lease to expire, as if a had stalled: b may take the task over.
    Task.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    second = threading.Thread(target=runner, args=("b",))
    second.start()
    first.join(30)
    second.join(30)
    assert results["a"].outcome == "lost_lease" and results["a"].steps == 0, results
    assert results["b"].steps == 2, results
    task.refresh_from_db()
    steps = assert_contiguous(task)
    assert len(steps) == 3 and [s.kind for s in steps[:2]] == ["trigger", "plan"]
    # Both runners called the model for step 0; only b's call became a step.
    assert task.lease_owner is None


def test_requeue_takes_over_expired_leases_and_lost_messages(user, settings):
    settings.TASK_REQUEUE_AFTER_SECONDS = 60
    old = timezone.now() - timedelta(minutes=5)
    crashed = task_create(owner=user, query="crashed")
    Task.objects.filter(pk=crashed.pk).update(status="running", lease_owner="gone", lease_expires_at=old)
    lost = task_create(owner=user, query="lost message")
    Task.objects.filter(pk=lost.pk).update(enqueued_at=old)
    healthy = task_create(owner=user, query="running fine")
    Task.objects.filter(pk=healthy.pk).update(status="running", lease_owner="alive",
                                              lease_expires_at=timezone.now() + timedelta(seconds=30))
    fresh = task_create(owner=user, query="just queued")
    paused = task_create(owner=user, query="paused")
    Task.objects.filter(pk=paused.pk).update(status="paused", lease_owner="gone", lease_expires_at=old)
    ids = set(requeue_expired_leases())
    assert ids == {str(crashed.pk), str(lost.pk)}
    crashed.refresh_from_db()
    assert crashed.lease_owner is None and crashed.status == "running"
    assert set(requeue_expired_leases()) == set(), "requeued tasks are not requeued again at once"
    assert fresh.pk and healthy.pk
