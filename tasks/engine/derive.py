"""Values derived from the step log for people: progress, per-subtask results, step estimate."""

from __future__ import annotations

from tasks.engine.log import last_retry, latest_plan, outcome, records_for, subtasks_of, terminal_status
from tasks.engine.state import SYNTHESIS, WORK_KINDS, StepRecord, TaskState

IN_SUBTASK_CAP = 0.9  # a running subtask never counts as more than 90% done
STEPS_PER_SUBTASK = 3  # typical: LLM -> tool -> LLM finish
GUESSED_SUBTASKS = 3  # before the plan exists


def subtask_results(steps: list[StepRecord]) -> list[dict]:
    """``intermediate_results``: one entry per planned subtask, in plan order."""
    results, running_found, retry = [], False, last_retry(steps)
    for subtask in subtasks_of(latest_plan(steps)):
        records = records_for(steps, subtask.id)
        done = outcome(records, retry)
        if done:
            status, result = done[0], done[1]
        else:
            status, result = ("running" if records and not running_found else "pending"), None
            running_found = running_found or bool(records)
        results.append({"subtask": subtask.description, "agent": subtask.agent, "status": status, "result": result})
    return results


def progress(state: TaskState) -> float:
    """Monotone estimate in [0, 1]: plan, each subtask and the synthesis are equal units.

    A running subtask adds (its model and tool steps / (2 x max_steps)), capped at 0.9, so finishing it
    (a full unit) always moves the bar forward. 1.0 only when completed.
    """
    steps = state.steps
    if terminal_status(steps) == "completed":
        return 1.0
    plan = latest_plan(steps)
    if plan is None:
        return 0.0
    subtasks = subtasks_of(plan)
    units = len(subtasks) + 2
    done, retry = 1.0, last_retry(steps)
    for subtask in subtasks:
        records = records_for(steps, subtask.id)
        if outcome(records, retry):
            done += 1
            continue
        agent = state.agents.get(subtask.agent)
        # Each LLM step usually brings a tool step: 2 x max_steps is the most a subtask can take.
        spent = sum(1 for r in records if r.kind in WORK_KINDS)
        done += min(spent / (2 * agent.max_steps), IN_SUBTASK_CAP) if agent else 0.0
        break
    else:
        if any(r.kind == SYNTHESIS and r.ok for r in steps):
            done += IN_SUBTASK_CAP
    return round(min(done / units, 0.99), 4)


def estimate_total_steps(state: TaskState) -> int:
    """Steps so far plus a guess of what remains (never below the steps so far)."""
    steps = state.steps
    if terminal_status(steps):
        return len(steps)
    plan = latest_plan(steps)
    if plan is None:
        return len(steps) + 1 + GUESSED_SUBTASKS * STEPS_PER_SUBTASK + 2
    remaining, retry = 2, last_retry(steps)  # synthesis and result
    for subtask in subtasks_of(plan):
        records = records_for(steps, subtask.id)
        if not outcome(records, retry):
            remaining += max(1, STEPS_PER_SUBTASK - len(records))
    if any(r.kind == SYNTHESIS and r.ok for r in steps):
        remaining = 1
    return len(steps) + remaining
