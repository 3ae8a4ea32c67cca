"""The context window on real runs: exact messages rebuilt from the log, summaries fold steps."""

from __future__ import annotations

import pytest

from tasks.context import messages_for_step, messages_match
from tasks.models import Step, Task
from tasks.runner import run_slice
from tasks.tests.waiting import assert_contiguous

pytestmark = pytest.mark.django_db(transaction=True)

BIG = "PostgreSQL began as POSTGRES at Berkeley. " * 120


def _run_to_end(task: Task) -> Task:
    for _ in range(20):
        if run_slice(task.id).outcome != "continue":
            break
    task.refresh_from_db()
    return task


def test_over_budget_history_is_folded_into_a_summary_step(agents_defaults, user, settings):
    settings.CONTEXT_TOKEN_BUDGET = 500
    task = Task.objects.create(owner=user, query="Research the history of PostgreSQL", step_count=5)
    plan = {"subtasks": [{"id": "s1", "description": "Research the history of PostgreSQL", "agent": "research"}]}
    common = {"task": task, "agent": "research", "subtask_id": "s1"}
    Step.objects.create(task=task, index=0, kind="plan", output=plan)
    Step.objects.create(index=1, kind="llm", output={"action": "tool", "tool": "web_search", "reason": "r",
                                                     "arguments": {"query": "postgres"}}, **common)
    Step.objects.create(index=2, kind="tool", input={"tool": "web_search", "arguments": {}},
                        output={"result": {"text": BIG}}, **common)
    Step.objects.create(index=3, kind="llm", output={"action": "tool", "tool": "memory_search", "reason": "r",
                                                     "arguments": {"query": "postgres"}}, **common)
    Step.objects.create(index=4, kind="tool", input={"tool": "memory_search", "arguments": {}},
                        output={"result": {"hits": []}}, **common)
    task = _run_to_end(task)
    assert task.status == "completed", task.error
    steps = assert_contiguous(task)
    summary = steps[5]
    assert summary.kind == "summary" and summary.status == "ok" and summary.input["fold"] == [1, 2]
    assert summary.prompt_label.startswith("summarize@")
    assert "Berkeley" in summary.context["variables"]["transcript"]
    after = steps[6]
    assert after.kind == "llm" and after.context["steps"] == [0, 5, 3, 4]
    text = "\n".join(m["content"] for m in messages_for_step(after))
    assert "Summary of the earlier steps of this subtask" in text
    assert BIG[:2000] not in text and text.count("Berkeley") < 10  # only the summary's few sentences
    for step in steps:
        if step.context:
            assert messages_match(step), step.index


def test_messages_of_every_llm_step_rebuild_exactly(agents_defaults, user):
    from tasks.services import task_create

    task = _run_to_end(task_create(owner=user, query="Research the history of PostgreSQL and average 3, 4 and 5"))
    assert task.status == "completed", task.error
    llm_steps = [s for s in assert_contiguous(task) if s.kind in ("plan", "llm", "summary", "synthesis")]
    assert len(llm_steps) >= 5
    for step in llm_steps:
        messages = messages_for_step(step)
        assert messages[0]["role"] == "system" and messages_match(step)
    # Tampering with what a step stored is detected.
    step = llm_steps[1]
    step.context["variables"]["subtask"] += " (edited)"
    assert not messages_match(step)
    assert messages_for_step(Step(task=task, index=99, kind="tool")) is None
