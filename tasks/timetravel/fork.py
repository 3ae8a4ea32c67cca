"""Fork a run at step N: a new task whose log starts with steps 0..N of the original.

``task_fork(task=..., user=..., at=N)`` copies steps 0..N (the step store's bulk path) into
a new task of the same owner, marked ``forked_from``/``forked_at_step``, and lets the pure
engine say what comes next under the *current* agents and options:

- more work -> the fork is queued and runs on the normal path (a ``run_task`` job after the
  commit; current active prompts and tools, its own lease, its own idempotency keys
  ``<fork id>:<index>``);
- a question without an answer -> ``waiting_human``; with ``answer=...`` the answer is
  given at once through ``tasks.services.task_respond``, like any answer;
- a paused log -> ``paused``; a finished log -> refused (nothing to continue).

``output=...`` instead replaces the model output of step N, a model step (a reviewer
corrects the model): the fork's step N is the original call with the corrected output.
Either edit is recorded on the fork (``fork_edit``). The copied steps are never executed
again: their tool calls, and the side effects those had, stay where they happened.
Operators of the task's workspace may fork (outsiders: NotFound, as if the task did not
exist; viewers: Forbidden); the fork belongs to whoever forked, in the same workspace.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from agentos.api import ApplicationError
from tasks.context import canonical, record_from_step
from tasks.engine import actions as a
from tasks.engine import decide, estimate_total_steps, progress, subtask_results
from tasks.engine.log import action_problem, plan_problem
from tasks.models import Step, Task, TaskStatus
from tasks.store import steps_copy

MODEL_KINDS = ("plan", "llm", "summary", "synthesis")
UNSET: Any = object()


def task_fork(*, task: Task, user, at: Any, answer: str | None = None, output: Any = UNSET) -> Task:
    """The new task (see the module docstring); ApplicationError naming the field at fault."""
    from workspaces.access import require_role

    require_role(user, task.workspace_id, "operator", what="task")
    if isinstance(at, bool) or not isinstance(at, int) or not 0 <= at < task.step_count:
        raise ApplicationError(f"at must be a step index from 0 to {task.step_count - 1}", field="at")
    if answer is not None and output is not UNSET:
        raise ApplicationError("give either answer or output, not both", field="output")
    originals = list(Step.objects.filter(task=task, index__lte=at).order_by("index"))
    copies = [copy_step(step) for step in originals]
    edit = None
    if output is not UNSET:
        copies[-1], edit = _edited(originals[-1], output, task)
    elif answer is not None:
        given = Step.objects.filter(task=task, kind="human_response", input__request=at).first()
        edit = {"kind": "answer", "step": at, "original": (given.input or {}).get("answer") if given else None,
                "value": answer, "at": timezone.now().isoformat()}
    with transaction.atomic():
        fork = Task.objects.create(
            owner=user, workspace_id=task.workspace_id, query=task.query, trigger=task.trigger,
            trigger_details=task.trigger_details,
            options=task.options, step_budget=task.step_budget, forked_from=task, forked_at_step=at, fork_edit=edit)
        state = _state(fork, copies)
        action = decide(state)
        changes = _changes(state, action, at, answer)
        steps_copy(task=fork, steps=copies, changes=changes)
        if answer is not None:
            from tasks.services import task_respond

            task_respond(task=fork, answer=answer)
        elif changes["status"] == TaskStatus.QUEUED:
            from tasks.services import enqueue

            transaction.on_commit(lambda: enqueue(fork.pk))
    return fork


def copy_step(step: Step) -> Step:
    """An unsaved copy of ``step`` (same index, data, prompt, context and created_at)."""
    copy = Step(**{field.attname: getattr(step, field.attname) for field in Step._meta.concrete_fields
                   if not field.primary_key})
    copy.task_id = None
    return copy


def _state(fork: Task, copies: list[Step]):
    from tasks.lookups import load_state
    from tasks.timetravel.export import enabled_agents

    state = load_state(Task(query=fork.query, options=fork.options, step_budget=fork.step_budget), enabled_agents())
    state.steps = [record_from_step(step) for step in copies]
    return state


def _changes(state, action, at: int, answer: str | None) -> dict:
    derived = {"progress": progress(state), "total_steps": estimate_total_steps(state),
               "intermediate_results": subtask_results(state.steps)}
    if isinstance(action, a.Done):
        raise ApplicationError(f"the run ends at step {at}; fork at an earlier step", field="at",
                               code="nothing_to_continue")
    if answer is not None and not (isinstance(action, a.Wait) and action.request_index == at):
        raise ApplicationError(f"step {at} is not a question waiting for an answer; fork at a question step "
                               "(human_request) to answer it differently", field="answer")
    if isinstance(action, a.Wait):
        return {**derived, "status": TaskStatus.WAITING_HUMAN, "waiting_for": action.waiting_for}
    if isinstance(action, a.Idle):
        return {**derived, "status": TaskStatus.PAUSED}
    return {**derived, "status": TaskStatus.QUEUED, "enqueued_at": timezone.now()}


def _edited(original: Step, output: Any, task: Task) -> tuple[Step, dict]:
    """Step N with the reviewer's output in place of the model's, checked as the runner
    checks a model's output; and the record of the edit."""
    if original.kind not in MODEL_KINDS:
        raise ApplicationError(f"step {original.index} is a {original.kind} step; only a model step "
                               f"({', '.join(MODEL_KINDS)}) has an output to edit", field="at")
    if not isinstance(output, dict):
        raise ApplicationError("output must be a JSON object (the model's JSON reply)", field="output")
    output = canonical(output)
    problem = _output_problem(original, output, task)
    if problem:
        raise ApplicationError(f"the edited output would be refused: {problem}", field="output",
                               code="invalid_output")
    edited = copy_step(original)
    edited.output, edited.status, edited.error = output, "ok", ""
    edit = {"kind": "output", "step": original.index, "original": original.output, "value": output,
            "at": timezone.now().isoformat()}
    return edited, edit


def _output_problem(step: Step, output: dict, task: Task) -> str | None:
    variables = ((step.context or {}).get("variables") or {}) if isinstance(step.context, dict) else {}
    if step.kind == "llm":
        tools = tuple(str(t.get("name")) for t in variables.get("tools") or [] if isinstance(t, dict))
        from tasks.models import AgentSpec

        agent = AgentSpec.objects.filter(name=step.agent).first()
        allow_human = bool(task.options.get("allow_human", True)) and bool(
            agent and "ask_human" in (agent.allowed_tools or []))
        return action_problem(output, allowed_tools=tools, allow_human=allow_human,
                              final=bool((step.input or {}).get("final")))
    if step.kind == "plan":
        agents = set((step.input or {}).get("agents") or [])
        return plan_problem(output, agents, int(variables.get("max_subtasks") or 10))
    key = "summary" if step.kind == "summary" else "result"
    return None if isinstance(output.get(key), str) else f"the {step.kind} needs a {key} string"
