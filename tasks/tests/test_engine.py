"""The pure engine, driven by hand-written step logs."""

import subprocess
import sys

from tasks.engine import actions as a
from tasks.engine import build_messages, decide, progress, subtask_results
from tasks.engine.log import action_problem, plan_problem
from tasks.tests.engine_helpers import Log


def test_engine_imports_no_django():
    code = "import sys, tasks.engine, tasks.engine.context; print(any(m.startswith('django') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_empty_log_plans_first():
    action = decide(Log().state())
    assert isinstance(action, a.CallPlan)
    assert action.history == ()


def test_three_failed_plans_fail_the_task():
    log = Log()
    for _ in range(3):
        log.add("plan", status="error", error="subtask 1 names agent 'x'")
    action = decide(log.state())
    assert isinstance(action, a.Fail) and "planning failed 3 times" in action.reason


def test_agent_loop_tool_then_finish_then_next_subtask_then_synthesis():
    log = Log().plan()
    first = decide(log.state())
    assert isinstance(first, a.CallAgent) and first.subtask.id == "s1" and first.steps_left == 4
    assert first.history == (0,)
    log.tool_call("s1", "web_search", {"query": "postgres"})
    run = decide(log.state())
    assert run == a.RunTool(run.subtask, "web_search", {"query": "postgres"})
    log.tool("s1", "web_search", {"results": ["Postgres began at Berkeley"]})
    again = decide(log.state())
    assert isinstance(again, a.CallAgent) and again.steps_left == 3 and again.history == (0, 1, 2)
    log.finish("s1", "It began at Berkeley in 1986.")
    second = decide(log.state())
    assert isinstance(second, a.CallAgent) and second.subtask.id == "s2"
    assert second.history == (0, 3)  # the plan and s1's deciding step, none of s1's tool chatter
    records = [log.steps[i] for i in second.history]
    messages = build_messages(kind="llm", system="SYS", query="q", subtask=second.subtask.as_dict(), records=records)
    assert "s1 (research, completed) — Research PostgreSQL history: It began at Berkeley" in messages[1]["content"]
    log.finish("s2", "19")
    synth = decide(log.state())
    assert isinstance(synth, a.CallSynthesis)
    assert [item["status"] for item in synth.results] == ["completed", "completed"]
    log.add("synthesis", output={"result": "# Answer"})
    assert decide(log.state()) == a.Complete("# Answer")
    log.add("result", output={"result": "# Answer"})
    assert decide(log.state()) == a.Done("completed")


def test_max_steps_rule_last_step_must_finish_then_forced_finish():
    log = Log().plan().finish("s1", "done")
    log.tool_call("s2", "calculator").tool("s2", "calculator", {"result": 19})
    log.tool_call("s2", "calculator").tool("s2", "calculator", {"result": 19})
    last = decide(log.state())
    assert isinstance(last, a.CallAgent) and last.steps_left == 1 and last.final
    log.llm("s2", error="invalid_output: no steps left: the only allowed action is finish")
    forced = decide(log.state())
    assert isinstance(forced, a.FinishSubtask) and forced.rule == "max_steps"
    assert "calculator" in forced.result and "19" in forced.result


def test_max_steps_without_any_result_fails_the_subtask():
    log = Log(allow_human=False).plan().finish("s1", "done")
    log.llm("s2", error="e1").tool_call("s2", "calculator").tool("s2", "calculator", error="division by zero")
    log.llm("s2", error="e3")
    # 2 consecutive errors (tool, llm) only; the 3 LLM steps are spent, nothing gathered.
    action = decide(log.state())
    assert isinstance(action, a.FailSubtask) and "max_steps (3)" in action.reason


def test_errors_are_compacted_into_the_next_context():
    log = Log().plan()
    log.llm("s1", error="invalid_output: output is not JSON")
    log.tool_call("s1", "web_search").tool("s1", "web_search", error="timeout after 10s")
    action = decide(log.state())
    assert isinstance(action, a.CallAgent)
    messages = build_messages(kind="llm", system="S", query="q", subtask=action.subtask.as_dict(),
                              records=[log.steps[i] for i in action.history])
    contents = [m["content"] for m in messages]
    assert any("rejected: invalid_output: output is not JSON" in c for c in contents)
    assert any('"error": "timeout after 10s"' in c and '"ok": false' in c for c in contents)


def _three_errors(log: Log) -> Log:
    log.llm("s1", error="invalid_output: 1")
    log.tool_call("s1", "web_search").tool("s1", "web_search", error="boom")
    log.llm("s1", error="invalid_output: 2")
    return log


def test_three_consecutive_errors_escalate_to_a_human_when_allowed():
    log = _three_errors(Log().plan())
    # tool error, llm error... the trailing run is: tool error, llm error = 2; add one more
    log.llm("s1", error="invalid_output: 3")
    action = decide(log.state(allow_human=True))
    assert isinstance(action, a.AskHuman) and action.reason == "escalation" and "skip" in action.choices
    log.add("human_request", agent="research", subtask="s1", input={"reason": "escalation", "question": "?"})
    assert isinstance(decide(log.state()), a.Wait)
    log.add("human_response", agent="research", subtask="s1", input={"reason": "escalation", "answer": "skip"})
    skipped = decide(log.state())
    assert isinstance(skipped, a.FailSubtask) and "skipped" in skipped.reason


def test_three_consecutive_errors_fail_the_subtask_and_the_run_goes_on():
    log = _three_errors(Log().plan())
    log.llm("s1", error="invalid_output: 3")
    action = decide(log.state(allow_human=False))
    assert isinstance(action, a.FailSubtask) and "3 consecutive errors" in action.reason
    log.add("error", status="error", agent="research", subtask="s1", error=action.reason)
    nxt = decide(log.state(allow_human=False))
    assert isinstance(nxt, a.CallAgent) and nxt.subtask.id == "s2"
    log.finish("s2", "19")
    synth = decide(log.state(allow_human=False))
    assert [item["status"] for item in synth.results] == ["failed", "completed"]


def test_a_successful_step_resets_the_error_count():
    log = Log(allow_human=False).plan()
    log.llm("s1", error="e1").llm("s1", error="e2")
    log.tool_call("s1", "web_search").tool("s1", "web_search", error="boom")
    assert isinstance(decide(log.state()), a.CallAgent)


def test_approval_then_approve_runs_the_tool():
    log = Log().plan().tool_call("s1", "http_get", {"url": "https://example.com"})
    ask = decide(log.state(approval_tools=frozenset({"http_get"})))
    assert isinstance(ask, a.AskHuman) and ask.reason == "approval"
    assert ask.tool_call == {"tool": "http_get", "arguments": {"url": "https://example.com"}}
    log.add("human_request", agent="research", subtask="s1", input={"reason": "approval", "tool_call": ask.tool_call})
    log.add("human_response", agent="research", subtask="s1",
            input={"reason": "approval", "approve": True, "tool_call": ask.tool_call})
    run = decide(log.state(approval_tools=frozenset({"http_get"})))
    assert isinstance(run, a.RunTool) and run.approved and run.tool == "http_get"


def test_approval_deny_is_shown_to_the_model():
    log = Log().plan().tool_call("s1", "http_get", {"url": "https://example.com"})
    call = {"tool": "http_get", "arguments": {"url": "https://example.com"}}
    log.add("human_request", agent="research", subtask="s1", input={"reason": "approval", "tool_call": call})
    log.add("human_response", agent="research", subtask="s1",
            input={"reason": "approval", "approve": False, "comment": "not that site", "tool_call": call})
    action = decide(log.state(approval_tools=frozenset({"http_get"})))
    assert isinstance(action, a.CallAgent)
    messages = build_messages(kind="llm", system="S", query="q", subtask=action.subtask.as_dict(),
                              records=[log.steps[i] for i in action.history])
    assert '"error": "denied by human: not that site"' in messages[-1]["content"]


def test_step_budget_exhausted_fails_with_a_named_reason():
    log = Log().plan().tool_call("s1", "web_search").tool("s1", "web_search", {"r": 1})
    action = decide(log.state(step_budget=3))
    assert isinstance(action, a.Fail) and action.reason.startswith("step budget exhausted: 3 of 3")
    # Control steps do not count against the budget.
    log.add("pause").add("resume")
    assert isinstance(decide(log.state(step_budget=4)), a.CallAgent)


def test_summary_is_requested_over_budget_and_replaces_folded_steps():
    big = "x " * 3000
    log = Log().plan()
    log.tool_call("s1", "web_search").tool("s1", "web_search", {"text": big})
    log.tool_call("s1", "http_get").tool("s1", "http_get", {"text": "small"})
    action = decide(log.state(context_budget=600))
    assert isinstance(action, a.CallSummary)
    assert action.fold == (1, 2)  # the latest exchange (steps 3 and 4) stays verbatim
    log.add("summary", agent="research", subtask="s1", input={"fold": list(action.fold)},
            output={"summary": "Search found a long text."})
    after = decide(log.state(context_budget=600))
    assert isinstance(after, a.CallAgent)
    assert after.history == (0, 5, 3, 4)
    messages = build_messages(kind="llm", system="S", query="q", subtask=after.subtask.as_dict(),
                              records=[log.steps[i] for i in after.history])
    text = "\n".join(m["content"] for m in messages)
    assert "Summary of the earlier steps of this subtask: Search found a long text." in text
    assert big not in text
    # Without a budget problem nothing is folded.
    assert isinstance(decide(Log().plan().tool_call("s1", "web_search").state()), a.RunTool)


def test_a_failed_summary_lets_the_agent_continue():
    log = Log().plan().tool_call("s1", "web_search").tool("s1", "web_search", {"text": "x " * 3000})
    log.tool_call("s1", "http_get").tool("s1", "http_get", {"text": "y"})
    log.add("summary", status="error", agent="research", subtask="s1", error="timeout")
    assert isinstance(decide(log.state(context_budget=600)), a.CallAgent)


def test_control_flags_and_waiting():
    log = Log().plan()
    assert decide(log.state(cancel_requested=True)) == a.Cancel()
    assert decide(log.state(pause_requested=True)) == a.Pause()
    log.add("pause")
    assert decide(log.state(pause_requested=True)) == a.Idle()
    log.add("resume")
    assert isinstance(decide(log.state()), a.CallAgent)
    log.llm("s1", {"action": "ask_human", "question": "Which version?", "choices": ["15", "16"]})
    ask = decide(log.state())
    assert ask.question == "Which version?" and ask.choices == ("15", "16") and ask.reason == "ask_human"
    log.add("human_request", agent="research", subtask="s1", input={"reason": "ask_human", "question": "Which?"})
    wait = decide(log.state())
    assert isinstance(wait, a.Wait) and wait.waiting_for["question"] == "Which?"
    log.add("human_response", agent="research", subtask="s1", input={"reason": "ask_human", "answer": "16"})
    nxt = decide(log.state())
    messages = build_messages(kind="llm", system="S", query="q", subtask=nxt.subtask.as_dict(),
                              records=[log.steps[i] for i in nxt.history])
    assert messages[-1] == {"role": "user", "content": "The person answered: 16"}


def test_ask_human_as_a_tool_call_becomes_a_question():
    log = Log().plan().tool_call("s1", "ask_human", {"question": "OK?", "choices": ["yes", "no"]})
    ask = decide(log.state())
    assert isinstance(ask, a.AskHuman) and ask.question == "OK?" and ask.reason == "ask_human"


def test_all_subtasks_failed_fails_the_task_and_synthesis_fallback():
    log = Log().plan()
    log.add("error", status="error", agent="research", subtask="s1", error="x")
    log.add("error", status="error", agent="analysis", subtask="s2", error="y")
    assert isinstance(decide(log.state()), a.Fail)
    log = Log().plan().finish("s1", "A").finish("s2", "B")
    for _ in range(3):
        log.add("synthesis", status="error", error="bad")
    done = decide(log.state())
    assert isinstance(done, a.Complete) and done.rule == "synthesis_fallback" and "A" in done.result


def test_progress_is_monotone_and_results_follow_the_log():
    log = Log()
    values = [progress(log.state())]
    for step in [lambda: log.plan(), lambda: log.tool_call("s1", "web_search"),
                 lambda: log.tool("s1", "web_search", {"r": 1}), lambda: log.finish("s1", "A"),
                 lambda: log.finish("s2", "B"), lambda: log.add("synthesis", output={"result": "R"}),
                 lambda: log.add("result", output={"result": "R"})]:
        step()
        values.append(progress(log.state()))
    assert values == sorted(values) and values[0] == 0.0 and values[-1] == 1.0
    assert len(set(values)) == len(values)
    results = subtask_results(log.steps)
    assert results == [
        {"subtask": "Research PostgreSQL history", "agent": "research", "status": "completed", "result": "A"},
        {"subtask": "Average of 12, 15 and 30", "agent": "analysis", "status": "completed", "result": "B"},
    ]


def test_validators():
    agents = {"research", "analysis"}
    assert plan_problem({"subtasks": []}, agents, 5) == "the plan has no subtasks"
    assert "names agent 'x'" in plan_problem({"subtasks": [{"description": "d", "agent": "x"}]}, agents, 5)
    assert "at most 1" in plan_problem({"subtasks": [{"description": "d", "agent": "research"}] * 2}, agents, 1)
    assert plan_problem({"subtasks": [{"description": "d", "agent": "research"}]}, agents, 5) is None
    tools = ("web_search",)
    assert "not available" in action_problem({"action": "tool", "tool": "shell"}, allowed_tools=tools,
                                             allow_human=True, final=False)
    assert action_problem({"action": "tool", "tool": "web_search", "arguments": {}}, allowed_tools=tools,
                          allow_human=True, final=False) is None
    assert "only allowed action is finish" in action_problem({"action": "tool", "tool": "web_search"},
                                                             allowed_tools=tools, allow_human=True, final=True)
    assert "no person" in action_problem({"action": "ask_human", "question": "?"}, allowed_tools=tools,
                                         allow_human=False, final=False)


def test_a_summary_alone_is_never_folded_again():
    log = Log().plan().tool_call("s1", "web_search").tool("s1", "web_search", {"text": "x " * 3000})
    log.tool_call("s1", "http_get").tool("s1", "http_get", {"text": "y " * 3000})
    log.add("summary", agent="research", subtask="s1", input={"fold": [1, 2]}, output={"summary": "z " * 2000})
    # Still over budget, but only the summary precedes the latest exchange: go on.
    assert isinstance(decide(log.state(context_budget=500)), a.CallAgent)
