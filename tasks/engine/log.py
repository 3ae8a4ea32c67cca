"""Reading the step log: the plan, each subtask's records and outcome, pending questions.

Also the validators that decide whether a model's JSON is usable (an unusable output is
committed as a failed step whose one-line error the next call sees, factor 9).
"""

from __future__ import annotations

from typing import Any

from tasks.engine.state import (
    CANCEL,
    ERROR,
    HUMAN_REQUEST,
    HUMAN_RESPONSE,
    LLM,
    PAUSE,
    PLAN,
    RESULT,
    RESUME,
    RETRY,
    TOOL,
    WORK_KINDS,
    StepRecord,
    Subtask,
)

AGENT_ACTIONS = ("tool", "ask_human", "finish")


def terminal_status(steps: list[StepRecord]) -> str | None:
    """completed / failed / cancelled when a task-level final step exists (a retry after a
    failure makes the task live again)."""
    for record in reversed(steps):
        if record.kind == RETRY:
            return None
        if record.kind == CANCEL:
            return "cancelled"
        if record.kind == RESULT and not record.subtask_id:
            return "completed"
        if record.kind == ERROR and not record.subtask_id:
            return "failed"
    return None


def last_retry(steps: list[StepRecord]) -> int:
    """The index of the latest retry step, or -1. A retry gives what failed before it a fresh
    start: failed subtasks run again, and error counts, plan attempts, agent steps and the
    step budget count from it."""
    for record in reversed(steps):
        if record.kind == RETRY:
            return record.index
    return -1


def since(records: list[StepRecord], index: int) -> list[StepRecord]:
    """The records after ``index`` (all of them for -1)."""
    return records if index < 0 else [record for record in records if record.index > index]


def is_paused(steps: list[StepRecord]) -> bool:
    for record in reversed(steps):
        if record.kind in (PAUSE, RESUME):
            return record.kind == PAUSE
    return False


def pending_request(steps: list[StepRecord]) -> StepRecord | None:
    """The latest human_request that has no human_response after it."""
    for record in reversed(steps):
        if record.kind == HUMAN_RESPONSE:
            return None
        if record.kind == HUMAN_REQUEST:
            return record
    return None


def waiting_for(request: StepRecord) -> dict:
    data = request.input or {}
    return {
        "step": request.index,
        "reason": data.get("reason", "ask_human"),
        "question": data.get("question", ""),
        "choices": list(data.get("choices") or []),
        "tool_call": data.get("tool_call"),
        "subtask": request.subtask_id,
        "agent": request.agent,
    }


def work_steps(steps: list[StepRecord]) -> int:
    return sum(1 for record in steps if record.kind in WORK_KINDS)


def trailing_errors(records: list[StepRecord], kinds: frozenset[str] = frozenset({LLM, TOOL})) -> list[StepRecord]:
    """The failed steps at the end of ``records``; any successful step or human answer ends the run."""
    errors: list[StepRecord] = []
    for record in reversed(records):
        if record.kind in kinds:
            if record.ok:
                break
            errors.append(record)
        elif record.kind == HUMAN_RESPONSE:
            break
    return errors[::-1]


def latest_plan(steps: list[StepRecord]) -> StepRecord | None:
    for record in reversed(steps):
        if record.kind == PLAN and record.ok:
            return record
    return None


def subtasks_of(plan: StepRecord | None) -> tuple[Subtask, ...]:
    """The plan's subtasks; ids are made unique (s1, s2, ... when the model repeated one).
    Parsed once per plan record (StepRecord.planned)."""
    return () if plan is None else plan.planned


def parse_subtasks(output: Any) -> list[Subtask]:
    items = (output or {}).get("subtasks") or []
    subtasks: list[Subtask] = []
    seen: set[str] = set()
    for number, item in enumerate(items, start=1):
        ident = str(item.get("id") or "").strip()[:60] or f"s{number}"
        if ident in seen:
            ident = f"s{number}"
        seen.add(ident)
        subtasks.append(Subtask(ident, str(item.get("description", "")).strip(), str(item.get("agent", ""))))
    return subtasks


def records_for(steps: list[StepRecord], subtask_id: str) -> list[StepRecord]:
    return [record for record in steps if record.subtask_id == subtask_id]


def outcome(records: list[StepRecord], retry: int = -1) -> tuple[str, str | None, int] | None:
    """(status, result, index of the deciding step) once a subtask is over, else None.

    A subtask ends with an LLM step whose action is ``finish``, a deterministic ``result``
    step (max_steps rule), or an ``error`` step (the subtask failed) after the latest retry
    step (``retry``, see last_retry): a failure before it no longer counts.
    """
    for record in reversed(records):
        if record.kind == ERROR and record.index < retry:
            return None
        if record.kind == LLM and record.ok and (record.output or {}).get("action") == "finish":
            return "completed", str(record.output.get("result", "")), record.index
        if record.kind == RESULT:
            return "completed", str((record.output or {}).get("result", "")), record.index
        if record.kind == ERROR:
            return "failed", None, record.index
    return None


def plan_problem(output: Any, agents: set[str], max_subtasks: int) -> str | None:
    """Why a plan cannot be used, in one line, or None."""
    if not isinstance(output, dict) or not isinstance(output.get("subtasks"), list):
        return "the plan must be an object with a list of subtasks"
    items = output["subtasks"]
    if not items:
        return "the plan has no subtasks"
    if len(items) > max_subtasks:
        return f"the plan has {len(items)} subtasks; at most {max_subtasks} are allowed"
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not str(item.get("description", "")).strip():
            return f"subtask {number} has no description"
        if item.get("agent") not in agents:
            return f"subtask {number} names agent {item.get('agent')!r}; choose one of {', '.join(sorted(agents))}"
    return None


def action_problem(output: Any, *, allowed_tools: tuple[str, ...], allow_human: bool, final: bool) -> str | None:
    """Why an agent's JSON action cannot be used, in one line, or None."""
    if not isinstance(output, dict):
        return "the reply must be one JSON object with an action"
    action = output.get("action")
    if action not in AGENT_ACTIONS:
        return f"unknown action {action!r}; use one of {', '.join(AGENT_ACTIONS)}"
    if final and action != "finish":
        return "no steps left: the only allowed action is finish"
    if action == "finish":
        return None if isinstance(output.get("result"), str) else "finish needs a result string"
    if action == "ask_human" or output.get("tool") == "ask_human":
        if not allow_human:
            return "no person is available for this task; continue with the tools you have"
        question = output.get("question") if action == "ask_human" else (output.get("arguments") or {}).get("question")
        return None if isinstance(question, str) and question.strip() else "ask_human needs a question"
    tool = output.get("tool")
    if tool not in allowed_tools:
        return f"tool {tool!r} is not available; use one of {', '.join(allowed_tools) or '(none)'}"
    arguments = output.get("arguments", {})
    if not isinstance(arguments, dict):
        hint = " (send the object itself, not JSON text in a string)" if isinstance(arguments, str) else ""
        return f"arguments must be a JSON object, got {type(arguments).__name__}{hint}"
    return None
