"""A completed task's result reaches memory once, after the result step's commit."""

from __future__ import annotations

import pytest

from memory.models import MemoryEntry
from tasks.execution import result_memory_key, task_result_remember
from tasks.runner import run_slice
from tasks.services import task_create

pytestmark = pytest.mark.django_db


def _run(task, capture) -> None:
    # The store runs its after-commit work (publish, status signal) once the statement commits;
    # inside the test's transaction that is when the captured callbacks execute.
    with capture(execute=True):
        for _ in range(20):
            if run_slice(task.id, worker_id="w1").outcome != "continue":
                break
    task.refresh_from_db()


def test_the_result_step_records_the_key_and_the_entry_is_stored_once(
        agents_defaults, user, django_capture_on_commit_callbacks):
    task = task_create(owner=user, query="compute 12 * 7")
    _run(task, django_capture_on_commit_callbacks)
    assert task.status == "completed", task.error
    result_step = task.steps.order_by("-index").first()
    key = f"{task.id}:result"
    assert result_step.kind == "result" and result_step.input["memory_key"] == key == result_memory_key(task.id)
    entry = MemoryEntry.objects.get(idempotency_key=key)
    assert entry.kind == "task_result" and entry.source_task_id == task.id and entry.owner_id == user.pk
    assert entry.content == f"{task.query}\n\n{task.result}"
    # The follow-up run again (a second delivery, a retry): still one entry, the same one.
    assert task_result_remember(task_id=task.id) == str(entry.pk)
    assert task_result_remember(task_id=task.id) == str(entry.pk)
    assert MemoryEntry.objects.filter(idempotency_key=key).count() == 1


def test_the_result_step_commits_even_when_memory_refuses_the_entry(
        agents_defaults, user, django_capture_on_commit_callbacks, monkeypatch, caplog):
    import memory.services

    def unavailable(**kwargs):
        raise RuntimeError("embedder down")

    monkeypatch.setattr(memory.services, "memory_add", unavailable)
    task = task_create(owner=user, query="compute 12 * 7")
    _run(task, django_capture_on_commit_callbacks)
    assert task.status == "completed" and "84" in task.result
    assert task.steps.order_by("-index").first().input["memory_key"] == f"{task.id}:result"
    assert not MemoryEntry.objects.filter(source_task_id=task.id).exists()
    assert "embedder down" in caplog.text  # the failure is logged, not swallowed silently


def test_only_a_completed_task_with_a_result_is_remembered(agents_defaults, user):
    task = task_create(owner=user, query="compute 12 * 7")
    assert task_result_remember(task_id=task.id) is None
    assert not MemoryEntry.objects.filter(source_task_id=task.id).exists()


def test_the_beat_sweep_stores_a_result_its_worker_did_not(
        agents_defaults, user, django_capture_on_commit_callbacks, monkeypatch):
    """A worker stopped between the result step's commit and the memory write: the sweep
    (beat, every minute) stores the entry, once; entries already stored are left alone."""
    import memory.services
    from tasks.jobs import remember_results

    stored = memory.services.memory_add
    monkeypatch.setattr(memory.services, "memory_add", lambda **kwargs: (_ for _ in ()).throw(SystemError("killed")))
    lost = task_create(owner=user, query="compute 12 * 7")
    _run(lost, django_capture_on_commit_callbacks)
    monkeypatch.setattr(memory.services, "memory_add", stored)
    kept = task_create(owner=user, query="compute 3 + 4")
    _run(kept, django_capture_on_commit_callbacks)
    assert (lost.status, kept.status) == ("completed", "completed")
    assert not MemoryEntry.objects.filter(source_task_id=lost.id).exists()
    assert MemoryEntry.objects.filter(source_task_id=kept.id).count() == 1

    assert remember_results() == 1
    assert MemoryEntry.objects.get(source_task_id=lost.id).idempotency_key == f"{lost.id}:result"
    assert MemoryEntry.objects.filter(source_task_id=kept.id).count() == 1
    assert remember_results() == 0
