"""The durable loop: run a slice of a task's steps under a lease, one committed step at a time.

``run_slice(task_id)`` (called by the ``run_task`` Celery job):

1. Take the lease (tasks/leases.py); without it, return.
2. Load the step log once; the state then lives in memory for the slice and each committed
   step is appended to it (no re-read of the log per step).
3. Loop, within TASK_SLICE_SECONDS / TASK_SLICE_STEPS: ``decide(state)``; execute the action
   (LLM or tool call) OUTSIDE any transaction; then ONE statement (one round trip, one
   implicit transaction) made of three parts:
   a. ``UPDATE tasks_task ... WHERE id = %s AND lease_owner = me AND lease_expires_at > now()
      RETURNING pause_requested, cancel_requested`` — the fencing check, the row lock, the
      task's new status/progress/counters and the lease renewal in one statement. No row:
      the lease is gone (expired and taken over), so nothing is written;
   b. INSERT the step at the next index (unique (task, index): a second writer of step N
      fails even if fencing were bypassed);
   c. count the prompt version's use (exactly once per committed LLM step).
   The flags come back from (a), so pause and cancel are seen after every commit.
   After the commit: publish the step to ``task-<id>`` (non-blocking, see tasks/live.py).
4. The slice's last commit also releases the lease; a still-running task is re-enqueued
   after that commit (fairness between tasks).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection
from django.utils import timezone

from agentos.db import prepared_cursor
from prompts.tokens import count_tokens
from tasks import live
from tasks.context import task_records
from tasks.engine import actions as a
from tasks.engine import decide, estimate_total_steps, progress, subtask_results, waiting_for
from tasks.engine.state import AgentInfo, TaskState
from tasks.execution import (
    Run,
    StepDraft,
    complete_memory,
    execute_agent,
    execute_plan,
    execute_summary,
    execute_synthesis,
    execute_tool,
)
from tasks.leases import keeper, lease_acquire, lease_release, new_worker_id
from tasks.models import AgentSpec, Step, Task, TaskStatus
from tasks.sql import step_insert
from tools.models import ToolSetting
from tools.registry import all_tools, enabled_tools

logger = logging.getLogger(__name__)

EXECUTORS = {a.CallPlan: execute_plan, a.CallAgent: execute_agent, a.CallSummary: execute_summary,
             a.CallSynthesis: execute_synthesis, a.RunTool: execute_tool}
_FINAL_STATUS = {a.Complete: TaskStatus.COMPLETED, a.Fail: TaskStatus.FAILED, a.Cancel: TaskStatus.CANCELLED}
_UPDATE_FIELDS = ("status", "progress", "step_count", "total_steps", "intermediate_results", "waiting_for", "result",
                  "error", "finished_at", "updated_at", "enqueued_at")


@dataclass
class SliceResult:
    outcome: str  # no_lease | lost_lease | continue | paused | waiting | finished | idle
    steps: int = 0


def agents_and_disabled_tools() -> tuple[dict[str, AgentInfo], set[str]]:
    """The enabled agents (in AgentSpec's order, by name) and the names of the tools an
    administrator disabled, in one round trip: what a slice needs besides the task."""
    agent_table, setting_table = AgentSpec._meta.db_table, ToolSetting._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            # Table names from the models; no values in this statement.
            "SELECT (SELECT coalesce(json_agg(json_build_array(name, description, prompt_slug, allowed_tools, "  # noqa: S608
            f"max_steps) ORDER BY name), '[]') FROM {agent_table} WHERE enabled), "
            f"(SELECT coalesce(array_agg(name), '{{}}') FROM {setting_table} WHERE NOT enabled)"
        )
        agent_rows, disabled = cursor.fetchone()
    if isinstance(agent_rows, str):  # Django leaves json undecoded in raw queries
        agent_rows = json.loads(agent_rows)
    agents = {name: AgentInfo(name, description, slug, tuple(tools or ()), max_steps)
              for name, description, slug, tools, max_steps in agent_rows}
    return agents, set(disabled)


def load_state(task: Task, agents: dict[str, AgentInfo]) -> TaskState:
    approval = {spec.name for spec in all_tools() if spec.requires_approval}
    approval |= set(settings.TOOLS_REQUIRING_APPROVAL) | set(task.options.get("require_approval") or [])
    # A task that has no step yet (the first slice of most tasks) needs no query for its log.
    steps = task_records(task.pk) if task.step_count else []
    return TaskState(
        query=task.query, agents=agents, steps=steps, step_budget=task.step_budget,
        allow_human=bool(task.options.get("allow_human", True)), approval_tools=frozenset(approval),
        pause_requested=task.pause_requested, cancel_requested=task.cancel_requested,
        context_budget=settings.CONTEXT_TOKEN_BUDGET,
        max_subtasks=int(task.options.get("max_subtasks") or settings.TASK_MAX_SUBTASKS), count_tokens=count_tokens)


def run_slice(task_id, worker_id: str | None = None) -> SliceResult:
    worker_id = worker_id or new_worker_id()
    task = lease_acquire(task_id, worker_id)
    if task is None:
        return SliceResult("no_lease")
    keeper.register(task.pk, worker_id)
    try:
        return _Slice(task, worker_id).run()
    finally:
        keeper.unregister(worker_id)


class _Slice:
    def __init__(self, task: Task, worker_id: str) -> None:
        self.task, self.worker_id = task, worker_id
        agents, disabled = agents_and_disabled_tools()
        tools = {spec.name: spec for spec in enabled_tools(disabled)}
        self.run_ctx = Run(task=task, state=load_state(task, agents), tools=tools)
        self.started = time.monotonic()

    @property
    def state(self) -> TaskState:
        return self.run_ctx.state

    def run(self) -> SliceResult:
        if self.task.status == TaskStatus.RUNNING and not self.state.steps:
            live.publish(self.task.pk, live.status_event(self.task))
        done = 0
        while True:
            action = decide(self.state)
            if isinstance(action, (a.Done, a.Idle, a.Wait)):
                return self._settle(action, done)
            if keeper.lost(self.worker_id):
                return SliceResult("lost_lease", done)
            draft = self._execute(action)
            elapsed = time.monotonic() - self.started
            last = done + 1 >= settings.TASK_SLICE_STEPS or elapsed >= settings.TASK_SLICE_SECONDS
            status = self._commit(action, draft, release=last)
            if status is None:
                logger.warning("task %s: lease lost before step %s could commit", self.task.pk, self.state.next_index)
                return SliceResult("lost_lease", done)
            done += 1
            if status != TaskStatus.RUNNING:
                return SliceResult({"paused": "paused", "waiting_human": "waiting"}.get(status, "finished"), done)
            if last:
                return SliceResult("continue", done)

    def _execute(self, action) -> StepDraft:
        executor = EXECUTORS.get(type(action))
        if executor is not None:
            return executor(self.run_ctx, action)
        return _decision_step(self.run_ctx, action)

    def _settle(self, action, done: int) -> SliceResult:
        """Nothing to run now: make the status match the log and give the lease back."""
        fields: dict = {}
        if isinstance(action, a.Wait):
            fields = {"status": TaskStatus.WAITING_HUMAN, "waiting_for": action.waiting_for}
        elif isinstance(action, a.Idle):
            fields = {"status": TaskStatus.PAUSED}
        lease_release(self.task.pk, self.worker_id, **fields)
        return SliceResult({a.Wait: "waiting", a.Idle: "paused"}.get(type(action), "finished"), done)

    def _task_changes(self, action, record) -> dict:
        steps = [*self.state.steps, record]
        view = TaskState(**{**self.state.__dict__, "steps": steps})
        now = timezone.now()
        changes = {"status": TaskStatus.RUNNING, "step_count": len(steps), "updated_at": now,
                   "progress": max(self.task.progress, progress(view)), "total_steps": estimate_total_steps(view),
                   "intermediate_results": subtask_results(steps)}
        final = _FINAL_STATUS.get(type(action))
        if final:
            changes.update(status=final, finished_at=now, waiting_for=None)
            if isinstance(action, a.Complete):
                changes.update(result=action.result, progress=1.0)
            if isinstance(action, a.Fail):
                changes["error"] = action.reason
        elif isinstance(action, a.Pause):
            changes["status"] = TaskStatus.PAUSED
        elif isinstance(action, a.AskHuman):
            changes.update(status=TaskStatus.WAITING_HUMAN, waiting_for=waiting_for(record))
        return changes

    def _commit(self, action, draft: StepDraft, *, release: bool) -> str | None:
        """Fenced commit of one step; the task's new status, or None when the lease was lost."""
        index = self.state.next_index
        record = draft.record(index)
        changes = self._task_changes(action, record)
        release = release or changes["status"] != TaskStatus.RUNNING
        requeue = release and changes["status"] == TaskStatus.RUNNING
        if requeue:
            changes["enqueued_at"] = changes["updated_at"]
        step = Step(task_id=self.task.pk, index=index, kind=draft.kind, agent=draft.agent,
                    subtask_id=draft.subtask_id, status=draft.status, input=record.input, output=record.output,
                    error=draft.error, prompt_label=draft.prompt_label, context=draft.context,
                    context_hash=draft.context_hash, tokens_in=draft.tokens_in, tokens_out=draft.tokens_out,
                    duration_ms=draft.duration_ms, created_at=changes["updated_at"])
        try:
            flags = self._fenced_update(changes, release, step, draft)
        except IntegrityError:
            # Someone else committed step N: our view of the log is stale, so stop here.
            return None
        if flags is None:
            return None
        for name, value in changes.items():
            setattr(self.task, name, value)
        step._state.adding = False  # it is a row now: Step.save() refuses to rewrite it
        self.state.steps.append(record)
        self.state.pause_requested, self.state.cancel_requested = flags
        live.publish(self.task.pk, live.step_event(self.task, step))
        if requeue:
            from tasks.services import enqueue

            enqueue(self.task.pk)
        if changes["status"] in _NOTIFY_STATUSES and self.task.callback_url:
            _notify_status_changed(self.task.pk, changes["status"])
        return changes["status"]

    def _fenced_update(self, changes: dict, release: bool, step: Step, draft: StepDraft) -> tuple[bool, bool] | None:
        """ONE statement, so one round trip and one implicit transaction (autocommit):

        - ``lease``: the fencing check (our lease, not expired), the row lock, the task's new
          state and the lease renewal (or release); it returns the pause/cancel flags;
        - ``step``: INSERT of the step, only when ``lease`` matched (``SELECT ... FROM lease``);
        - ``used``: the prompt version's usage counters (the increments of
          prompts.services.prompt_version_record_use), only when the step was inserted, so a
          committed LLM step is counted exactly once.
        Returns the flags, or None when the lease is no longer ours (nothing was written).
        """
        quote = connection.ops.quote_name
        sets, params = [], []
        for name in _UPDATE_FIELDS:
            if name in changes:
                field = Task._meta.get_field(name)
                sets.append(f"{quote(field.column)} = %s")
                params.append(field.get_db_prep_save(changes[name], connection))
        if release:
            sets.append("lease_owner = NULL, lease_expires_at = NULL")
        else:
            sets.append("lease_expires_at = now() + make_interval(secs => %s)")
            params.append(settings.TASK_LEASE_SECONDS)
        params += [self.task.pk, self.worker_id]
        insert, insert_params = step_insert(step, source="lease")
        params += insert_params
        used = ""
        if draft.prompt_version_id:
            used, extra = _usage_update(draft)
            params += extra
        # Column names come from the models' fields; every value is a query parameter.
        sql = " ".join([
            f"WITH lease AS (UPDATE {Task._meta.db_table} SET {', '.join(sets)}",  # noqa: S608
            "WHERE id = %s AND lease_owner = %s AND lease_expires_at > now()",
            "RETURNING pause_requested, cancel_requested),",
            f"step AS ({insert}){used}",
            "SELECT lease.pause_requested, lease.cancel_requested, step.id FROM lease, step",
        ])
        # Prepared (agentos/db.py): the text differs only by the columns a step changes, so a
        # worker's connection plans each variant once.
        with prepared_cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        step.pk = row[2]
        return bool(row[0]), bool(row[1])


def _usage_update(draft: StepDraft) -> tuple[str, list]:
    from prompts.models import PromptVersion

    column = {name: connection.ops.quote_name(PromptVersion._meta.get_field(name).column)
              for name in ("uses", "successes", "failures", "tokens_in_total", "tokens_out_total", "latency_ms_total")}
    ok = draft.status == "ok"
    increments = [("uses", 1), ("successes", int(ok)), ("failures", int(not ok)), ("tokens_in_total", draft.tokens_in),
                  ("tokens_out_total", draft.tokens_out), ("latency_ms_total", draft.duration_ms)]
    sets = ", ".join(f"{column[name]} = {column[name]} + %s" for name, _ in increments)
    sql = (f", used AS (UPDATE {PromptVersion._meta.db_table} SET {sets} "  # noqa: S608
           "WHERE id = %s AND EXISTS (SELECT 1 FROM step))")
    return sql, [value for _, value in increments] + [draft.prompt_version_id]


# Statuses reported to a task's callback URL (triggers app), after the step that set them committed.
_NOTIFY_STATUSES = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.WAITING_HUMAN)


def _notify_status_changed(task_id, status: str) -> None:
    """Hand the new status to the triggers app, which enqueues the signed callback (if any).

    Called after the commit, never inside it, and guarded: a notification problem must not
    undo or repeat a committed step.
    """
    from django.apps import apps

    if not apps.is_installed("triggers"):
        return
    try:
        from triggers.services import task_status_changed

        task_status_changed(task_id=task_id, status=str(status))
    except Exception:  # logged; the run goes on
        logger.exception("task %s: could not enqueue the %s callback", task_id, status)


def _decision_step(run: Run, action) -> StepDraft:
    """Steps that need no outside call (except storing a completed result in memory)."""
    match action:
        case a.AskHuman():
            return StepDraft("human_request", agent=action.subtask.agent, subtask_id=action.subtask.id,
                             input={"reason": action.reason, "question": action.question,
                                    "choices": list(action.choices), "tool_call": action.tool_call})
        case a.FinishSubtask():
            return StepDraft("result", agent=action.subtask.agent, subtask_id=action.subtask.id,
                             output={"result": action.result, "rule": action.rule})
        case a.FailSubtask():
            return StepDraft("error", status="error", agent=action.subtask.agent, subtask_id=action.subtask.id,
                             error=action.reason)
        case a.Complete():
            entry = complete_memory(run, action.result)
            return StepDraft("result", input={"memory_entry": entry, "rule": action.rule or None},
                             output={"result": action.result})
        case a.Fail():
            return StepDraft("error", status="error", error=action.reason)
        case a.Pause():
            return StepDraft("pause")
        case a.Cancel():
            return StepDraft("cancel")
    raise TypeError(f"no executor for {action!r}")
