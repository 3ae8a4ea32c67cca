"""Services: each state change in one place, Conflict when the state does not allow it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agentos.api import ApplicationError, Conflict, NotFound
from tasks.models import Step, Task
from tasks.presenters import step_to_dict, task_to_dict
from tasks.selectors import steps_after, task_get_for_user, tasks_for_user
from tasks.services import task_cancel, task_create, task_pause, task_respond, task_resume

pytestmark = pytest.mark.django_db

TASK_KEYS = {"task_id", "query", "status", "trigger", "current_step", "total_steps", "progress",
             "intermediate_results", "result", "error", "waiting_for", "cost_usd", "created_at", "updated_at",
             "finished_at", "provider_error", "stream_url", "pause_url", "resume_url", "cancel_url", "respond_url",
             "retry_url", "forked_from", "workspace"}
STEP_KEYS = {"index", "kind", "agent", "subtask", "status", "input", "output", "error", "prompt_version",
             "tokens_in", "tokens_out", "tokens_estimated", "duration_ms", "provider", "model", "tokens_cached",
             "cost_usd", "created_at"}


def _leased(task: Task) -> None:
    Task.objects.filter(pk=task.pk).update(status="running", lease_owner="w1",
                                           lease_expires_at=timezone.now() + timedelta(seconds=30))


def _waiting(task: Task, reason: str = "ask_human", **extra) -> Task:
    # index 1: step 0 is the trigger step task_create writes
    Step.objects.create(task=task, index=1, kind="human_request", agent="research", subtask_id="s1",
                        input={"reason": reason, "question": "Which?", **extra})
    waiting = {"step": 1, "reason": reason, "question": "Which?", "choices": [], "subtask": "s1",
               "agent": "research", "tool_call": extra.get("tool_call")}
    Task.objects.filter(pk=task.pk).update(status="waiting_human", waiting_for=waiting, step_count=2)
    task.refresh_from_db()
    return task


@pytest.mark.parametrize(("query", "options", "field"), [
    ("", None, "query"),
    ("   ", None, "query"),
    ("x" * 9000, None, "query"),
    ("ok", {"color": "red"}, "options.color"),
    ("ok", {"allow_human": "yes"}, "options.allow_human"),
    ("ok", {"step_budget": 2}, "options.step_budget"),
    ("ok", {"agents": ["nobody"]}, "options.agents"),
    ("ok", ["not", "a", "dict"], "options"),
])
def test_task_create_refuses_bad_input(user, query, options, field):
    with pytest.raises(ApplicationError) as caught:
        task_create(owner=user, query=query, options=options)
    assert caught.value.field == field


def test_task_create_queues_with_budget_and_trigger(user):
    task = task_create(owner=user, query="  hello  ", trigger="cli", options={"step_budget": 7, "allow_human": False})
    assert (task.query, task.status, task.trigger, task.step_budget) == ("hello", "queued", "cli", 7)
    assert task.enqueued_at is not None
    [first] = steps_after(task=task)
    assert (first.index, first.kind, first.input) == (0, "trigger", {"trigger": "cli", "details": {}})


def test_pause_resume_cancel_without_a_worker_write_steps(user):
    task = task_create(owner=user, query="q")
    task_pause(task=task)
    assert task.status == "paused" and [s.kind for s in steps_after(task=task, after=0)] == ["pause"]
    with pytest.raises(Conflict):
        task_pause(task=task)
    task_resume(task=task)
    assert task.status == "queued" and not task.pause_requested
    with pytest.raises(Conflict):
        task_resume(task=task)
    task_cancel(task=task)
    assert task.status == "cancelled" and task.finished_at is not None
    assert [s.kind for s in steps_after(task=task)] == ["trigger", "pause", "resume", "cancel"]
    assert [s.index for s in steps_after(task=task, after=1)] == [2, 3]
    for change in (task_pause, task_resume, task_cancel):
        with pytest.raises(Conflict):
            change(task=task)


def test_with_a_live_lease_services_only_set_flags(user):
    task = task_create(owner=user, query="q")
    _leased(task)
    task_pause(task=task)
    assert task.pause_requested and task.status == "running"
    task_resume(task=task)  # withdrawn before it took effect
    assert not task.pause_requested and task.status == "running"
    task_cancel(task=task)
    assert task.cancel_requested and task.status == "running"
    assert not Step.objects.filter(task=task).exclude(kind="trigger").exists(), \
        "the runner writes these steps, not the service"


def test_an_expired_lease_does_not_block_a_cancel(user):
    task = task_create(owner=user, query="q")
    Task.objects.filter(pk=task.pk).update(status="running", lease_owner="gone",
                                           lease_expires_at=timezone.now() - timedelta(seconds=1))
    task_cancel(task=task)
    assert task.status == "cancelled" and task.lease_owner is None


def test_respond_answers_the_question(user):
    task = _waiting(task_create(owner=user, query="q"))
    with pytest.raises(ApplicationError) as caught:
        task_respond(task=task, answer="  ")
    assert caught.value.field == "answer"
    task_respond(task=task, answer="version 16")
    assert task.status == "queued" and task.waiting_for is None
    response = Step.objects.get(task=task, index=2)
    assert (response.kind, response.subtask_id, response.agent) == ("human_response", "s1", "research")
    assert response.input == {"request": 1, "reason": "ask_human", "comment": "", "answer": "version 16"}
    with pytest.raises(Conflict):
        task_respond(task=task, answer="again")


def test_respond_to_an_approval(user):
    call = {"tool": "http_get", "arguments": {"url": "https://example.com"}}
    task = _waiting(task_create(owner=user, query="q"), "approval", tool_call=call)
    with pytest.raises(ApplicationError) as caught:
        task_respond(task=task, answer="perhaps")
    assert caught.value.field == "approve"
    task_respond(task=task, approve=False, comment="not now")
    step = Step.objects.get(task=task, index=2)
    assert step.input["approve"] is False and step.input["comment"] == "not now" and step.input["tool_call"] == call


def test_paused_while_waiting_resumes_into_waiting(user):
    task = _waiting(task_create(owner=user, query="q"))
    task_pause(task=task)
    assert task.status == "paused"
    task_resume(task=task)
    assert task.status == "waiting_human"


def test_selectors_scope_tasks_to_their_owner(user, other_user, staff_user):
    mine = task_create(owner=user, query="mine")
    theirs = task_create(owner=other_user, query="theirs")
    assert task_get_for_user(user=user, task_id=mine.id) == mine
    with pytest.raises(NotFound):
        task_get_for_user(user=user, task_id=theirs.id)
    with pytest.raises(NotFound):
        task_get_for_user(user=user, task_id="not-a-uuid")
    assert task_get_for_user(user=staff_user, task_id=theirs.id) == theirs
    assert list(tasks_for_user(user=user)) == [mine]
    assert set(tasks_for_user(user=staff_user)) == {mine, theirs}
    assert list(tasks_for_user(user=user, status="completed")) == []
    with pytest.raises(ApplicationError):
        tasks_for_user(user=user, status="sleeping")


def test_presenters_have_the_documented_shapes(user):
    task = task_create(owner=user, query="q")
    task_pause(task=task)
    data = task_to_dict(task)
    assert set(data) == TASK_KEYS
    assert data["status"] == "paused" and data["current_step"] == 2 and data["result"] is None
    assert data["created_at"].endswith("Z")
    # The controls that apply now: a paused task can be resumed or cancelled, not paused or retried.
    assert data["resume_url"] == f"/api/v1/tasks/{task.id}/resume" and data["stream_url"].endswith("/stream")
    assert data["pause_url"] is data["retry_url"] is data["respond_url"] is None and data["cancel_url"]
    step = step_to_dict(Step.objects.get(task=task, index=1))
    assert set(step) == STEP_KEYS
    assert step["kind"] == "pause" and step["agent"] is None and step["prompt_version"] is None


def test_resume_queues_a_paused_task_once_and_a_paused_question_waits_again(
        user, monkeypatch, django_capture_on_commit_callbacks):
    import tasks.services as services

    enqueued = []
    monkeypatch.setattr(services, "enqueue", enqueued.append)
    plain = task_create(owner=user, query="q")
    task_pause(task=plain)
    with django_capture_on_commit_callbacks(execute=True):
        task_resume(task=plain)
    plain.refresh_from_db()
    assert (plain.status, plain.pause_requested, plain.step_count) == ("queued", False, 3)
    assert plain.enqueued_at is not None and enqueued == [plain.id]
    assert [(s.index, s.kind) for s in steps_after(task=plain, after=0)] == [(1, "pause"), (2, "resume")]

    asked = _waiting(task_create(owner=user, query="q"))
    task_pause(task=asked)
    with django_capture_on_commit_callbacks(execute=True):
        task_resume(task=asked)
    asked.refresh_from_db()
    assert (asked.status, asked.waiting_for["step"]) == ("waiting_human", 1)
    assert enqueued == [plain.id], "a task waiting for an answer gets no job"
