"""End to end with real Celery worker processes and the offline provider."""

from __future__ import annotations

import time

import pytest

from prompts.models import PromptVersion
from tasks.context import messages_for_step, messages_match
from tasks.models import Step
from tasks.services import task_cancel, task_create, task_pause, task_respond, task_resume
from tasks.tests.waiting import assert_contiguous, steps_of, wait_status, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MAIN_QUERY = "Research the history of PostgreSQL, compute the average of 12, 15 and 30, and summarise both"


def test_main_query_completes_with_plan_tools_synthesis_and_visible_steps(defaults, user, make_worker):
    make_worker()
    task = task_create(owner=user, query=MAIN_QUERY)
    wait_status(task, "completed", "failed", timeout=90)
    assert task.status == "completed", task.error
    steps = assert_contiguous(task)
    plan = next(s for s in steps if s.kind == "plan")
    subtasks = plan.output["subtasks"]
    assert len(subtasks) >= 2
    assert plan.input["memory"], "the plan prompt got the pre-fetched memory hits"
    for agent in {s["agent"] for s in subtasks}:
        if agent in ("research", "analysis"):
            assert any(s.kind == "tool" and s.agent == agent and s.status == "ok" for s in steps), agent
    assert [s.kind for s in steps][-2:] == ["synthesis", "result"]
    assert "19" in task.result  # the average, from the data_analysis tool
    assert task.progress == 1.0 and task.finished_at is not None
    assert [r["status"] for r in task.intermediate_results] == ["completed"] * len(subtasks)
    llm_steps = [s for s in steps if s.context]
    assert len(llm_steps) >= 5
    for step in llm_steps:
        assert messages_match(step), f"messages of step {step.index} do not rebuild to the recorded hash"
        assert step.prompt_label and step.tokens_in > 0
    uses = sum(PromptVersion.objects.values_list("uses", flat=True))
    assert uses == len(llm_steps)
    from memory.models import MemoryEntry

    # Written by the worker right after the result step's commit (tasks/signals.py).
    entries = MemoryEntry.objects.filter(kind="task_result", source_task_id=task.id)
    wait_until(lambda: entries.exists(), 30, message="the result in memory")
    assert entries.count() == 1 and entries.get().idempotency_key == f"{task.id}:result"


def test_pause_then_resume(agents_defaults, user, make_worker):
    make_worker(OFFLINE_LLM_LATENCY_MS=200)
    task = task_create(owner=user, query=MAIN_QUERY)
    wait_until(lambda: Step.objects.filter(task=task).count() >= 2, 30, message="two steps")
    task_pause(task=task)
    wait_status(task, "paused", timeout=30)
    count = task.step_count
    assert steps_of(task)[-1].kind == "pause"
    time.sleep(1.0)
    task.refresh_from_db()
    assert task.step_count == count and task.status == "paused", "nothing runs while paused"
    task_resume(task=task)
    wait_status(task, "completed", "failed", timeout=60)
    assert task.status == "completed", task.error
    kinds = [s.kind for s in assert_contiguous(task)]
    assert kinds.index("pause") < kinds.index("resume") < kinds.index("result")


def test_cancel_stops_the_run(agents_defaults, user, make_worker):
    make_worker(OFFLINE_LLM_LATENCY_MS=200)
    task = task_create(owner=user, query=MAIN_QUERY)
    wait_until(lambda: Step.objects.filter(task=task).count() >= 1, 30, message="a step")
    task_cancel(task=task)
    wait_status(task, "cancelled", timeout=30)
    steps = assert_contiguous(task)
    assert steps[-1].kind == "cancel" and not any(s.kind == "result" for s in steps)
    time.sleep(0.8)
    assert Step.objects.filter(task=task).count() == len(steps)


def test_ask_human_then_respond(agents_defaults, user, make_worker):
    make_worker()
    task = task_create(owner=user, query="Research the history of PostgreSQL and confirm with me before finishing")
    wait_status(task, "waiting_human", "completed", "failed", timeout=60)
    assert task.status == "waiting_human"
    assert task.waiting_for["reason"] == "ask_human" and task.waiting_for["question"]
    request = steps_of(task)[-1]
    assert request.kind == "human_request"
    task_respond(task=task, answer="yes, go ahead")
    wait_status(task, "completed", "failed", timeout=60)
    assert task.status == "completed", task.error
    steps = assert_contiguous(task)
    response = next(s for s in steps if s.kind == "human_response")
    assert response.input["answer"] == "yes, go ahead"
    after = next(s for s in steps if s.kind == "llm" and s.index > response.index)
    assert any("yes, go ahead" in m["content"] for m in messages_for_step(after))
    assert "yes, go ahead" in task.result


def test_approval_deny_is_seen_by_the_agent(agents_defaults, user, make_worker):
    make_worker(TOOLS_REQUIRING_APPROVAL="web_search")
    task = task_create(owner=user, query="Research the history of PostgreSQL")
    wait_status(task, "waiting_human", "completed", "failed", timeout=60)
    assert task.status == "waiting_human"
    assert task.waiting_for["reason"] == "approval"
    assert task.waiting_for["tool_call"]["tool"] == "web_search"
    task_respond(task=task, approve=False, comment="no web searches today")
    wait_status(task, "completed", "failed", timeout=60)
    assert task.status == "completed", task.error
    steps = assert_contiguous(task)
    assert not any(s.kind == "tool" and s.input.get("tool") == "web_search" for s in steps), "denied tool never ran"
    response = next(s for s in steps if s.kind == "human_response")
    assert response.input["approve"] is False
    after = next(s for s in steps if s.kind == "llm" and s.index > response.index)
    assert any("denied by human: no web searches today" in m["content"] for m in messages_for_step(after))


def test_approval_approve_runs_the_tool(agents_defaults, user, make_worker):
    make_worker()
    task = task_create(owner=user, query="Research the history of PostgreSQL",
                       options={"require_approval": ["web_search"]})
    wait_status(task, "waiting_human", "completed", "failed", timeout=60)
    assert task.waiting_for["reason"] == "approval"
    task_respond(task=task, approve=True)
    wait_status(task, "completed", "failed", timeout=60)
    tool = next(s for s in assert_contiguous(task) if s.kind == "tool")
    assert tool.input["tool"] == "web_search" and tool.input["approved"] is True
