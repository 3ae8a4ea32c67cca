"""The retry rule and provider waits in the pure engine (tasks/engine/decide.py rule 6)."""

from __future__ import annotations

from tasks.engine import actions as a
from tasks.engine import decide, progress, subtask_results
from tasks.engine.context import agent_history, build_messages
from tasks.engine.log import terminal_status
from tasks.engine.state import Subtask
from tasks.tests.engine_helpers import Log


def test_a_retry_after_failed_plans_plans_again_with_fresh_attempts():
    log = Log().add("trigger")
    for _ in range(3):
        log.add("plan", status="error", error="invalid_output: not JSON")
    failed = decide(log.state())
    assert isinstance(failed, a.Fail)
    log.add("error", status="error", error=failed.reason)
    assert terminal_status(log.steps) == "failed"
    log.add("retry")
    assert terminal_status(log.steps) is None
    action = decide(log.state())
    assert isinstance(action, a.CallPlan) and action.history == ()


def test_a_retry_runs_the_failed_subtask_again_and_keeps_the_completed_one():
    log = Log().add("trigger").plan()
    log.finish("s1", "PostgreSQL began in 1986.")
    for _ in range(3):
        log.llm("s2", error="invalid_output: not JSON")
    assert isinstance(decide(log.state(allow_human=False)), a.FailSubtask)
    log.add("error", status="error", agent="analysis", subtask="s2", error="3 consecutive errors")
    assert isinstance(decide(log.state(allow_human=False)), a.CallSynthesis)  # s1 completed, s2 failed
    log.add("error", status="error", error="all subtasks failed")  # (as if every subtask had failed)
    log.add("retry")
    action = decide(log.state(allow_human=False))
    assert isinstance(action, a.CallAgent) and action.subtask.id == "s2"
    # The old errors do not count toward the three strikes any more, and s2 has its max_steps again.
    assert action.steps_left == 3 and not action.final
    results = subtask_results(log.steps)
    assert [r["status"] for r in results] == ["completed", "running"]
    assert 0 < progress(log.state()) < 1


def test_step_budget_counts_from_the_retry():
    log = Log(step_budget=5).add("trigger").plan()
    for _ in range(2):
        log.tool_call("s1", "web_search").tool("s1", "web_search", "x")
    assert isinstance(decide(log.state()), a.Fail)
    log.add("error", status="error", error="step budget exhausted").add("retry")
    assert isinstance(decide(log.state()), a.CallAgent)


def test_provider_waits_are_neither_errors_nor_context_nor_budget():
    log = Log(step_budget=6).add("trigger").plan()
    log.llm("s1", error="invalid_output: not JSON").llm("s1", error="invalid_output: not JSON")
    for attempt in range(1, 6):
        log.add("provider_wait", status="error", agent="research", subtask="s1",
                error="rate_limited: HTTP 429", input={"attempt": attempt})
    action = decide(log.state(allow_human=False))
    # Two model errors, five waits: still the agent's turn (not three strikes, not over budget).
    assert isinstance(action, a.CallAgent) and action.subtask.id == "s1"
    subtask = Subtask("s1", "Research PostgreSQL history", "research")
    history = agent_history(log.steps, subtask, log.steps[1])
    assert not any(r.kind == "provider_wait" for r in history)
    text = " ".join(m["content"] for m in build_messages(kind="llm", system="", query="q",
                                                           subtask=subtask.as_dict(), records=history))
    assert "rate_limited" not in text and "not JSON" in text
