"""The context window (factor 3): the messages of every LLM call, built from the step log.

``build_messages`` is the one function that turns a rendered system prompt and a list of
step records into the exact messages sent to the model. It is deterministic (JSON with
sorted keys, no clocks), so the runner stores only the prompt version, the template
variables and the indexes of the records used, and ``tasks.context.rebuild_messages``
reproduces the messages byte for byte (checked against ``messages_hash``).

How the history of an agent step is chosen (``agent_history``): the plan (for subtask
descriptions), the deciding step of every earlier subtask (its result, compact), then this
subtask's own steps. When a ``summary`` step exists for the subtask, it stands in for all
the steps it folded.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tasks.engine.log import outcome, records_for, subtasks_of
from tasks.engine.state import (
    APPROVAL,
    ESCALATION,
    HUMAN_REQUEST,
    HUMAN_RESPONSE,
    LLM,
    PLAN,
    PROVIDER_WAIT,
    SUMMARY,
    SYNTHESIS,
    TOOL,
    StepRecord,
    Subtask,
)

TOOL_RESULT_CHARS = 2000  # a tool result longer than this is cut in the context (the step keeps it whole)
EARLIER_RESULT_CHARS = 600


def dumps(value: Any) -> str:
    # Sorted keys: PostgreSQL's jsonb does not keep key order, and rebuilt messages must match.
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def messages_hash(messages: list[dict]) -> str:
    return hashlib.sha256(dumps(messages).encode()).hexdigest()


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tool_message(tool: str, *, result: Any = None, error: str | None = None) -> str:
    if error is not None:
        return dumps({"tool": tool, "ok": False, "error": error})
    text = dumps(result)
    if len(text) > TOOL_RESULT_CHARS:
        result = clip(text, TOOL_RESULT_CHARS)
    return dumps({"tool": tool, "ok": True, "result": result})


def record_messages(record: StepRecord) -> list[dict]:
    """The messages one of a subtask's own steps contributes to its agent's context."""
    data = record.input or {}
    if record.kind == SUMMARY and record.ok:
        return [{"role": "user", "content": f"Summary of the earlier steps of this subtask: "
                                            f"{(record.output or {}).get('summary', '')}"}]
    if record.kind == LLM:
        if record.ok:
            return [{"role": "assistant", "content": dumps(record.output)}]
        return [{"role": "user", "content": f"Error: your previous reply was rejected: {record.error}. "
                                            "Reply with one valid JSON action."}]
    if record.kind == TOOL:
        tool = str(data.get("tool", ""))
        if record.ok:
            return [{"role": "user", "content": _tool_message(tool, result=(record.output or {}).get("result"))}]
        return [{"role": "user", "content": _tool_message(tool, error=record.error)}]
    if record.kind == HUMAN_RESPONSE:
        return _response_messages(data)
    return []


def _response_messages(data: dict) -> list[dict]:
    reason = data.get("reason")
    if reason == APPROVAL:
        if data.get("approve"):
            return []  # the tool's own result follows
        tool = str((data.get("tool_call") or {}).get("tool", ""))
        comment = str(data.get("comment") or "").strip()
        return [{"role": "user", "content": _tool_message(tool, error="denied by human" + (
            f": {comment}" if comment else ""))}]
    answer = str(data.get("answer") or "")
    if reason == ESCALATION:
        return [{"role": "user", "content": f"A person reviewed the errors above and answered: {answer}"}]
    return [{"role": "user", "content": f"The person answered: {answer}"}]


def visible_own(records: list[StepRecord]) -> list[StepRecord]:
    """A subtask's own steps as its agent sees them: the latest summary replaces what it folded."""
    summary = next((r for r in reversed(records) if r.kind == SUMMARY and r.ok), None)
    folded = set((summary.input or {}).get("fold", [])) if summary else set()
    visible = [summary] if summary else []
    # Provider waits are the infrastructure's, never the model's business.
    visible += [r for r in records if r.index not in folded and r.kind not in (SUMMARY, HUMAN_REQUEST, PROVIDER_WAIT)]
    return visible


def by_index(steps: list[StepRecord], index: int) -> StepRecord:
    # The log is contiguous (index == position); the search is only a safety net.
    if index < len(steps) and steps[index].index == index:
        return steps[index]
    return next(record for record in steps if record.index == index)


def agent_history(steps: list[StepRecord], subtask: Subtask, plan: StepRecord | None) -> list[StepRecord]:
    history = [plan] if plan else []
    for earlier in subtasks_of(plan):
        if earlier.id == subtask.id:
            break
        done = outcome(records_for(steps, earlier.id))
        if done:
            history.append(by_index(steps, done[2]))
    history += visible_own(records_for(steps, subtask.id))
    return history


def _earlier_lines(records: list[StepRecord], subtask_id: str) -> list[str]:
    plan = next((r for r in records if r.kind == PLAN), None)
    described = {s.id: s for s in subtasks_of(plan)}
    lines = []
    for record in records:
        if record.kind == PLAN or not record.subtask_id or record.subtask_id == subtask_id:
            continue
        done = outcome([record])
        sub = described.get(record.subtask_id)
        name = f"{record.subtask_id} ({sub.agent if sub else record.agent}"
        about = f" — {sub.description}" if sub else ""
        if done and done[0] == "completed":
            lines.append(f"- {name}, completed){about}: {clip(str(done[1]), EARLIER_RESULT_CHARS)}")
        else:
            lines.append(f"- {name}, failed){about}: {record.error or 'no result'}")
    return lines


def build_messages(*, kind: str, system: str, query: str, subtask: dict | None,
                   records: list[StepRecord]) -> list[dict]:
    """The exact messages of one LLM call (see the module docstring)."""
    messages = [{"role": "system", "content": system}]
    if kind == PLAN:
        messages.append({"role": "user", "content": query})
        messages += [{"role": "user", "content": f"Error: your previous plan was rejected: {r.error}. "
                                                 "Reply with a corrected plan as JSON."}
                     for r in records if r.kind == PLAN and not r.ok]
    elif kind == SUMMARY:
        messages.append({"role": "user", "content": "Summarise the transcript above for the agent that continues "
                                                    "this subtask. Keep every fact, number and open question."})
    elif kind == SYNTHESIS:
        messages.append({"role": "user", "content": f"Write the final answer to the task: {query}"})
        messages += [{"role": "user", "content": f"Error: your previous answer was rejected: {r.error}. "
                                                 "Reply with the answer as JSON."}
                     for r in records if r.kind == SYNTHESIS and not r.ok]
    else:
        sub = subtask or {}
        intro = f"Task: {query}\nYour subtask ({sub.get('id')}, agent {sub.get('agent')}): {sub.get('description')}"
        earlier = _earlier_lines(records, str(sub.get("id")))
        if earlier:
            intro += "\n\nResults of earlier subtasks:\n" + "\n".join(earlier)
        messages.append({"role": "user", "content": intro})
        for record in records:
            if record.subtask_id == sub.get("id"):
                messages += record_messages(record)
    return messages


def transcript(records: list[StepRecord]) -> str:
    """The folded steps as text for the summarize prompt."""
    lines = []
    for record in records:
        for message in record_messages(record):
            lines.append(f"{message['role']}: {message['content']}")
    return "\n".join(lines)


def history_tokens(messages: list[dict], count_tokens) -> int:
    return sum(count_tokens(str(message["content"])) for message in messages if message["role"] != "system")
