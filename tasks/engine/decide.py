"""``decide(state) -> Action``: the whole workflow as a pure function of the step log.

1. Terminal step present -> Done. Cancel requested -> Cancel. Pause requested -> Pause
   (a paused log -> Idle). A human question without an answer -> Wait.
2. No usable plan -> CallPlan; 3 failed plans in a row -> Fail.
3. The first subtask without an outcome runs its micro-agent: LLM -> JSON action ->
   tool / ask_human / finish. Rules, in order:
   - an LLM ``tool`` action runs the tool, unless the tool requires approval (AskHuman
     with the pending call; approve -> RunTool, deny -> the model sees "denied by human");
   - 3 consecutive failed steps (invalid output or failed tool) escalate: AskHuman when
     the task allows a human ("skip" fails the subtask), otherwise FailSubtask;
   - **max_steps rule**: an agent has ``max_steps`` LLM steps per subtask; the last one may
     only ``finish`` (its schema allows nothing else). If it still has no result after
     max_steps LLM steps, the subtask finishes deterministically with the tool results it
     gathered (FinishSubtask), or fails when there are none;
   - when the agent's history exceeds the token budget, a CallSummary folds older steps.
4. All subtasks over -> CallSynthesis -> Complete. Every subtask failed -> Fail. 3 failed
   syntheses -> Complete with the subtask results joined (the **synthesis fallback rule**).
5. **Step budget rule**: model and tool steps count against ``step_budget``; a work action
   that would exceed it becomes Fail("step budget exhausted ...").
6. **Retry rule**: a ``retry`` step after a failure makes the task live again: failed
   subtasks run again, and plan attempts, error runs, agent steps and the step budget
   count from the latest retry (log.last_retry). Provider waits are not part of the
   workflow: the model never sees them and they count toward nothing.
"""

from __future__ import annotations

from tasks.engine import actions as a
from tasks.engine.context import (
    agent_history,
    build_messages,
    clip,
    dumps,
    history_tokens,
    visible_own,
)
from tasks.engine.log import (
    is_paused,
    last_retry,
    latest_plan,
    outcome,
    pending_request,
    records_for,
    since,
    subtasks_of,
    terminal_status,
    trailing_errors,
    waiting_for,
    work_steps,
)
from tasks.engine.state import (
    APPROVAL,
    ESCALATION,
    HUMAN_RESPONSE,
    LLM,
    PLAN,
    SUMMARY,
    SYNTHESIS,
    TOOL,
    AgentInfo,
    StepRecord,
    Subtask,
    TaskState,
)

MAX_CONSECUTIVE_ERRORS = 3
SYSTEM_PROMPT_SHARE = 1000  # tokens of the context budget kept for the system prompt


def decide(state: TaskState) -> a.CallPlan | a.CallAgent | a.CallSummary | a.CallSynthesis | a.RunTool | \
        a.AskHuman | a.FinishSubtask | a.FailSubtask | a.Complete | a.Fail | a.Pause | a.Cancel | a.Wait | \
        a.Idle | a.Done:
    status = terminal_status(state.steps)
    if status:
        return a.Done(status)
    if state.cancel_requested:
        return a.Cancel()
    if is_paused(state.steps):
        return a.Idle()
    if state.pause_requested:
        return a.Pause()
    request = pending_request(state.steps)
    if request is not None:
        return a.Wait(request.index, waiting_for(request))
    action = _workflow(state)
    used = work_steps(since(state.steps, last_retry(state.steps)))
    if isinstance(action, a.WORK_ACTIONS) and used >= state.step_budget:
        return a.Fail(f"step budget exhausted: {used} of {state.step_budget} model and tool steps used")
    return action


def _workflow(state: TaskState):
    plan = latest_plan(state.steps)
    retry = last_retry(state.steps)
    if plan is None:
        attempts = [r for r in since(state.steps, retry) if r.kind == PLAN]
        if len(attempts) >= MAX_CONSECUTIVE_ERRORS:
            return a.Fail(f"planning failed {len(attempts)} times in a row; last error: {attempts[-1].error}")
        return a.CallPlan(state.max_subtasks, history=tuple(r.index for r in attempts))
    results = []
    for subtask in subtasks_of(plan):
        records = records_for(state.steps, subtask.id)
        done = outcome(records, retry)
        if done is None:
            return _agent_action(state, subtask, records, plan, retry)
        results.append((subtask, done))
    return _synthesis_action(state, plan, results, retry)


def _agent_action(state: TaskState, subtask: Subtask, records: list[StepRecord], plan: StepRecord, retry: int):
    agent = state.agents.get(subtask.agent)
    if agent is None:
        return a.FailSubtask(subtask, f"agent {subtask.agent!r} is not available")
    if records:
        follow = _follow_up(state, subtask, agent, records[-1])
        if follow is not None:
            return follow
    return _next_llm_step(state, subtask, agent, records, plan, retry)


def _follow_up(state: TaskState, subtask: Subtask, agent: AgentInfo, last: StepRecord):
    """What a just-committed LLM action or human answer calls for, if anything."""
    if last.kind == LLM and last.ok:
        action = last.output or {}
        if action.get("action") == "ask_human" or action.get("tool") == "ask_human":
            source = action if action.get("action") == "ask_human" else (action.get("arguments") or {})
            return a.AskHuman(subtask, str(source.get("question", "")), tuple(source.get("choices") or ()))
        if action.get("action") == "tool":
            tool, arguments = str(action.get("tool")), dict(action.get("arguments") or {})
            if tool in state.approval_tools:
                question = f"Allow the {agent.name} agent to run {tool} with {clip(dumps(arguments), 300)}?"
                return a.AskHuman(subtask, question, ("approve", "deny"), APPROVAL,
                                  {"tool": tool, "arguments": arguments})
            return a.RunTool(subtask, tool, arguments)
    if last.kind == HUMAN_RESPONSE:
        data = last.input or {}
        if data.get("reason") == APPROVAL and data.get("approve"):
            call = data.get("tool_call") or {}
            return a.RunTool(subtask, str(call.get("tool")), dict(call.get("arguments") or {}), approved=True)
        if data.get("reason") == ESCALATION and str(data.get("answer", "")).strip().lower() == "skip":
            return a.FailSubtask(subtask, "skipped by a person after repeated errors")
    return None


def _next_llm_step(state: TaskState, subtask: Subtask, agent: AgentInfo, records: list[StepRecord],
                   plan: StepRecord, retry: int):
    errors = trailing_errors(since(records, retry))
    if len(errors) >= MAX_CONSECUTIVE_ERRORS:
        last_error = errors[-1].error
        if state.allow_human:
            question = (f"The {agent.name} agent failed {len(errors)} times in a row on “{subtask.description}” "
                        f"(last error: {last_error}). Answer with guidance to retry, or “skip” to give up on "
                        "this subtask.")
            return a.AskHuman(subtask, question, ("retry", "skip"), ESCALATION)
        return a.FailSubtask(subtask, f"{len(errors)} consecutive errors; last: {last_error}")
    llm_steps = sum(1 for r in since(records, retry) if r.kind == LLM)
    if llm_steps >= agent.max_steps:
        return _forced_finish(subtask, agent, records)
    history = agent_history(state.steps, subtask, plan)
    if not (records and records[-1].kind == SUMMARY and not records[-1].ok):
        fold = _fold_if_over_budget(state, subtask, history, records)
        if fold:
            return a.CallSummary(subtask, fold)
    steps_left = agent.max_steps - llm_steps
    return a.CallAgent(subtask, steps_left, steps_left == 1, tuple(r.index for r in history))


def _fold_if_over_budget(state: TaskState, subtask: Subtask, history: list[StepRecord],
                         records: list[StepRecord]) -> tuple[int, ...]:
    messages = build_messages(kind=LLM, system="", query=state.query, subtask=subtask.as_dict(), records=history)
    budget = max(state.context_budget - SYSTEM_PROMPT_SHARE, state.context_budget // 2)
    # A token covers at least one UTF-8 byte, so a history with fewer bytes than the budget
    # fits without running the tokenizer (the common case: most histories are short).
    size = sum(len(str(m["content"]).encode()) for m in messages if m["role"] != "system")
    if size <= budget or history_tokens(messages, state.count_tokens) <= budget:
        return ()
    own = visible_own(records)
    last_llm = max((i for i, r in enumerate(own) if r.kind == LLM), default=0)
    # Keep the latest exchange (the last LLM action and what followed it); fold the rest.
    to_fold = own[:last_llm]
    if not any(r.kind != SUMMARY for r in to_fold):
        return ()  # nothing new to fold: summarising a summary alone would not shrink the context
    previous = to_fold[0] if to_fold[0].kind == SUMMARY else None
    folded = set((previous.input or {}).get("fold", [])) if previous else set()
    return tuple(sorted(folded | {r.index for r in to_fold}))


def _forced_finish(subtask: Subtask, agent: AgentInfo, records: list[StepRecord]):
    gathered = [f"- {r.input.get('tool')}: {clip(dumps((r.output or {}).get('result')), 400)}"
                for r in records if r.kind == TOOL and r.ok]
    if not gathered:
        return a.FailSubtask(subtask, f"reached max_steps ({agent.max_steps}) without a result")
    result = (f"{subtask.description}\n\nStopped after {agent.max_steps} steps (max_steps); "
              "results gathered:\n" + "\n".join(gathered))
    return a.FinishSubtask(subtask, result, "max_steps")


def _synthesis_action(state: TaskState, plan: StepRecord, results: list, retry: int):
    if results and all(done[0] == "failed" for _, done in results):
        return a.Fail(f"all {len(results)} subtasks failed")
    syntheses = [r for r in since(state.steps, retry) if r.kind == SYNTHESIS]
    finished = next((r for r in reversed(syntheses) if r.ok), None)
    items = tuple({"subtask": sub.description, "agent": sub.agent, "status": done[0], "result": done[1]}
                  for sub, done in results)
    if finished is not None:
        return a.Complete(str((finished.output or {}).get("result", "")))
    if len(trailing_errors(syntheses, frozenset({SYNTHESIS}))) >= MAX_CONSECUTIVE_ERRORS:
        text = "\n\n".join(f"## {item['subtask']} ({item['agent']}, {item['status']})\n\n{item['result'] or '-'}"
                           for item in items)
        return a.Complete(text, "synthesis_fallback")
    history = (plan.index, *(done[2] for _, done in results), *(r.index for r in syntheses if not r.ok))
    return a.CallSynthesis(items, history)
