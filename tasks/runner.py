"""The durable loop: run a slice of a task's steps under a lease, one committed step at a time.

``run_slice(task_id)`` (called by the ``run_task`` Celery job):

1. Take the lease (tasks/leases.py), and in the same statement read the enabled agents,
   the disabled tools and the active prompt versions; without the lease, return.
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
   The statement is built (agentos.db.prepare) and sent without waiting for its reply (its
   ``send()``, which returns at once): while PostgreSQL
   executes and commits it, the next action is decided and, when it is an LLM call or a
   call of a tool without side effects, prepared (prompt rendered, tool run; a tool that
   returns before the reply has its own step's statement built meanwhile). The reply is
   read before anything that depends on it: the provider call, any other query, a tool
   with side effects or any decision step, the sending of the next step, the end of the
   slice. Once confirmed, the step is published to ``task-<id>`` (non-blocking, see
   tasks/live.py). A step is stamped (``created_at``) right before it is sent.
   A reply with no row (lease lost) ends the slice and drops the prepared work; a reply
   whose pause/cancel flags changed drops it and decides again. Nothing is written ahead
   of the log: step N+1 is only sent after step N's reply.
4. The slice's last commit also releases the lease; a still-running task is re-enqueued
   after that commit (fairness between tasks).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections
from django.utils import timezone

from agentos.db import prepare
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
from tasks.sql import db_value, step_insert, step_insert_position, step_insert_sql
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


@dataclass
class SliceLookups:
    agents: dict[str, AgentInfo]  # the enabled agents, by name
    disabled_tools: set[str]  # tools an administrator disabled
    active_prompts: dict[str, tuple[int, str]]  # prompt slug -> (active version id, template stamp)


@lru_cache(maxsize=1)
def _lookups_sql() -> str:
    """What a slice needs besides the task, read in the lease's statement: one JSON array of
    the enabled agents, the names of the disabled tools and the active prompt versions
    (slug -> [version id, template stamp]; their content then comes from the process's
    cache of immutable versions, prompts.services.version_cached). No parameters."""
    from prompts.models import PromptTemplate, PromptVersion

    agent_table, setting_table = AgentSpec._meta.db_table, ToolSetting._meta.db_table
    version_table, template_table = PromptVersion._meta.db_table, PromptTemplate._meta.db_table
    # Table names from the models; no values in this expression.
    return (
        "SELECT json_build_array("  # noqa: S608
        "(SELECT coalesce(json_agg(json_build_array(name, description, prompt_slug, allowed_tools, max_steps) "
        f"ORDER BY name), '[]') FROM {agent_table} WHERE enabled), "
        f"(SELECT coalesce(json_agg(name), '[]') FROM {setting_table} WHERE NOT enabled), "
        f"(SELECT coalesce(json_object_agg(t.slug, json_build_array(v.id, t.updated_at)), '{{}}') "
        f"FROM {version_table} v JOIN {template_table} t ON t.id = v.template_id WHERE v.is_active))"
    )


def _parse_lookups(value) -> SliceLookups:
    agent_rows, disabled, active = json.loads(value) if isinstance(value, str) else value
    agents = {name: AgentInfo(name, description, slug, tuple(tools or ()), max_steps)
              for name, description, slug, tools, max_steps in agent_rows}
    prompts = {slug: (int(ident), str(stamp)) for slug, (ident, stamp) in active.items()}
    return SliceLookups(agents, set(disabled), prompts)


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
    # The lease and the slice's lookups in one statement: a slice starts with one round trip.
    task = lease_acquire(task_id, worker_id, also=_lookups_sql())
    if task is None:
        return SliceResult("no_lease")
    keeper.register(task.pk, worker_id)
    try:
        return _Slice(task, worker_id).run()
    finally:
        keeper.unregister(worker_id)


class _Stale(Exception):
    """The previous step's commit, settled during the next action, changed what decide()
    would choose (pause or cancel requested, or the lease lost): re-decide."""


# Actions that may start while the previous step's commit is still in flight: LLM calls,
# up to the provider call (Run.before_call settles the commit there), and calls of tools
# without side effects that need no approval (settled before their step is sent; if the
# reply says the lease is lost or a pause/cancel arrived, the result is dropped, as when a
# worker dies during a call). Every other action (a side effect, memory, decisions) starts
# only after the commit is confirmed, so it always follows a durable log.
_OVERLAPPING = (a.CallAgent, a.CallSummary, a.CallSynthesis)


@dataclass
class _Pending:
    """A sent, unconfirmed step commit."""

    inflight: object  # what agentos.db.prepare returned, sent: its result() is the reply
    step: StepRow
    outgoing: live.Outgoing | None = None  # its live event, once made ready

    def event(self, task) -> live.Outgoing:
        """The step's live event, serialized (while the commit may still travel)."""
        if self.outgoing is None:
            self.outgoing = live.prepare(task.pk, live.step_event(task, self.step))
        return self.outgoing


@dataclass(slots=True)
class StepRow:
    """A step as the runner writes it: the Step model's field values (attribute names as
    Step's), for the statement and the live event, without a model instance per step."""

    task_id: object
    index: int
    kind: str
    agent: str
    subtask_id: str
    status: str
    input: dict
    output: object
    error: str
    prompt_label: str
    context: dict | str | None  # an LLM step's context as JSON text (tasks.sql.JSONText)
    context_hash: str
    tokens_in: int
    tokens_out: int
    duration_ms: int
    created_at: object
    pk: int | None = None


class _Slice:
    def __init__(self, task: Task, worker_id: str) -> None:
        self.task, self.worker_id = task, worker_id
        lookups = _parse_lookups(task.also)
        tools = {spec.name: spec for spec in enabled_tools(lookups.disabled_tools)}
        self.run_ctx = Run(task=task, state=load_state(task, lookups.agents), tools=tools,
                           active_prompts=lookups.active_prompts, before_call=self._settle_or_stale,
                           while_tool_runs=self._settle_during)
        self.started = time.monotonic()
        self.pending: _Pending | None = None
        self.lost = False
        self.done = 0  # confirmed commits

    @property
    def state(self) -> TaskState:
        return self.run_ctx.state

    def run(self) -> SliceResult:
        # Any query of this thread first settles a commit in flight (the connection carries
        # one statement at a time).
        with connection.execute_wrapper(self._settle_before_query):
            try:
                return self._loop()
            finally:
                self._drain()

    def _loop(self) -> SliceResult:
        if self.task.status == TaskStatus.RUNNING and not self.state.steps:
            live.publish(self.task.pk, live.status_event(self.task))
        while True:
            action = decide(self.state)
            try:
                if not self._may_overlap(action):
                    self._settle_or_stale()
                if isinstance(action, (a.Done, a.Idle, a.Wait)):
                    return self._finish(action)
                if keeper.lost(self.worker_id):
                    return SliceResult("lost_lease", self.done)
                draft = self._execute(action)
                # Steps sent so far, the one in flight included.
                sent = self.done + (self.pending is not None)
                last = (sent + 1 >= settings.TASK_SLICE_STEPS
                        or time.monotonic() - self.started >= settings.TASK_SLICE_SECONDS)
                status = self._commit(action, draft, release=last)
            except _Stale:
                if self.lost:
                    return SliceResult("lost_lease", self.done)
                continue
            if status is None:
                return SliceResult("lost_lease", self.done)
            if status != TaskStatus.RUNNING:
                return SliceResult({"paused": "paused", "waiting_human": "waiting"}.get(status, "finished"), self.done)
            if last:
                return SliceResult("continue", self.done)

    def _may_overlap(self, action) -> bool:
        if isinstance(action, a.RunTool):
            spec = self.run_ctx.tools.get(action.tool)
            return bool(spec) and not (spec.side_effects or spec.requires_approval or spec.waits_for_human
                                       or action.tool in self.state.approval_tools or action.approved)
        return isinstance(action, _OVERLAPPING)

    def _execute(self, action) -> StepDraft:
        executor = EXECUTORS.get(type(action))
        if executor is not None:
            return executor(self.run_ctx, action)
        return _decision_step(self.run_ctx, action)

    def _finish(self, action) -> SliceResult:
        """Nothing to run now: make the status match the log and give the lease back."""
        fields: dict = {}
        if isinstance(action, a.Wait):
            fields = {"status": TaskStatus.WAITING_HUMAN, "waiting_for": action.waiting_for}
        elif isinstance(action, a.Idle):
            fields = {"status": TaskStatus.PAUSED}
        lease_release(self.task.pk, self.worker_id, **fields)
        return SliceResult({a.Wait: "waiting", a.Idle: "paused"}.get(type(action), "finished"), self.done)

    def _settle(self) -> str:
        """Read the reply of the commit in flight: "ok", "changed" (the pause/cancel flags
        differ from those decide() saw) or "lost" (nothing was written: the lease is gone
        or another worker wrote that index). Publishes the step once it is confirmed."""
        pending, self.pending = self.pending, None
        # The event first: self.task is as the step left it until the next step is sent.
        outgoing = pending.event(self.task)
        try:
            row = pending.inflight.result()
        except IntegrityError:
            # Someone else committed step N: our view of the log is stale, so stop here.
            row = None
        if row is None:
            self.lost = True
            logger.warning("task %s: lease lost before step %s could commit", self.task.pk, pending.step.index)
            return "lost"
        pending.step.pk = row[2]
        self.done += 1
        live.send(outgoing)
        flags = (bool(row[0]), bool(row[1]))
        changed = flags != (self.state.pause_requested, self.state.cancel_requested)
        self.state.pause_requested, self.state.cancel_requested = flags
        return "changed" if changed else "ok"

    def _settle_or_stale(self) -> None:
        if self.pending is not None and self._settle() != "ok":
            raise _Stale

    def _settle_during(self, call) -> None:
        """While a tool without side effects runs (tools.dispatch.RunningCall): read the
        previous step's reply if it arrives first, so that step is published during the
        call; if the tool returns first, its step is built while the commit still travels
        and the reply is read in _commit, before the step is sent."""
        if self.pending is not None:
            self.pending.event(self.task)
            if self.pending.inflight.wait(until=call):
                self._settle_or_stale()

    def _settle_before_query(self, execute, sql, params, many, context):
        self._settle_or_stale()
        return execute(sql, params, many, context)

    def _drain(self) -> None:
        """On the way out of a failed slice: never leave a reply unread on the connection."""
        if self.pending is None:
            return
        try:
            self._settle()
        except Exception:  # the connection is in an unknown state: drop it
            logger.warning("task %s: could not read the reply of the last step commit", self.task.pk, exc_info=True)
            connection.close()

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
        # Derived columns that most steps leave as they are (the subtask results change at
        # a subtask's end) are not rewritten: a smaller statement, no JSON to serialise.
        for name in ("progress", "total_steps", "intermediate_results"):
            if changes[name] == getattr(self.task, name):
                del changes[name]
        return changes

    def _commit(self, action, draft: StepDraft, *, release: bool) -> str | None:
        """Send the fenced commit of one step; the task's new status, or None when the lease
        was lost. The statement is built first, then the previous step's reply is read
        (raises _Stale when it changes what decide() saw), then the step is stamped and sent.
        A RUNNING step of a slice that goes on stays in flight (self.pending) while the next
        action starts; the slice's last step, and any step that changes the status, is
        confirmed here."""
        if self.lost:
            return None
        index = self.state.next_index
        record = draft.record(index)
        changes = self._task_changes(action, record)
        release = release or changes["status"] != TaskStatus.RUNNING
        requeue = release and changes["status"] == TaskStatus.RUNNING
        if requeue:
            changes["enqueued_at"] = changes["updated_at"]
        step = StepRow(task_id=self.task.pk, index=index, kind=draft.kind, agent=draft.agent,
                       subtask_id=draft.subtask_id, status=draft.status, input=record.input, output=record.output,
                       error=draft.error, prompt_label=draft.prompt_label, context=draft.context,
                       context_hash=draft.context_hash, tokens_in=draft.tokens_in, tokens_out=draft.tokens_out,
                       duration_ms=draft.duration_ms, created_at=changes["updated_at"])
        db = connections[DEFAULT_DB_ALIAS]  # the thread's connection, looked up once
        statement, stamped = self._statement(db, changes, release, step, draft)
        self._settle_or_stale()
        # The step's time is when it is sent (after the previous step's reply).
        now = timezone.now()
        for name in _STAMPED:
            if name in changes:
                changes[name] = now
        step.created_at = now
        inflight = statement.send({position: db_value(field, now, db) for position, field in stamped})
        # What the next decide() sees, ahead of the confirmation; if the commit fails the
        # slice ends and this state is dropped with it.
        for name, value in changes.items():
            setattr(self.task, name, value)
        self.state.steps.append(record)
        self.pending = _Pending(inflight, step)
        if not release:
            return changes["status"]
        if self._settle() == "lost":
            return None
        if requeue:
            from tasks.services import enqueue

            enqueue(self.task.pk)
        if changes["status"] in _NOTIFY_STATUSES and self.task.callback_url:
            _notify_status_changed(self.task.pk, changes["status"])
        return changes["status"]

    def _statement(self, db, changes: dict, release: bool, step: StepRow, draft: StepDraft):
        """ONE statement, so one round trip and one implicit transaction (autocommit):

        - ``lease``: the fencing check (our lease, not expired), the row lock, the task's new
          state and the lease renewal (or release); it returns the pause/cancel flags;
        - ``step``: INSERT of the step, only when ``lease`` matched (``SELECT ... FROM lease``);
        - ``used``: the prompt version's usage counters (the increments of
          prompts.services.prompt_version_record_use), only when the step was inserted, so a
          committed LLM step is counted exactly once.
        Its reply (no row: the lease is no longer ours and nothing was written) is read by
        _settle. Returned prepared (agentos.db.prepare: values converted, nothing sent), with
        the (position, field) of its timestamps; sent without waiting (inside a caller's
        transaction it runs when sent).
        """
        changed = tuple(name for name in _UPDATE_FIELDS if name in changes)
        sql, fields, stamped = _commit_sql(changed, release, bool(draft.prompt_version_id))
        params = [db_value(field, changes[field.name], db) for field in fields]
        if not release:
            params.append(settings.TASK_LEASE_SECONDS)
        params += [self.task.pk, self.worker_id]
        params += step_insert(step, source="lease")[1]
        if draft.prompt_version_id:
            ok = draft.status == "ok"
            params += [1, int(ok), int(not ok), draft.tokens_in, draft.tokens_out, draft.duration_ms,
                       draft.prompt_version_id]
        return prepare(sql, params, db), stamped


# The task's timestamps a step sets; they and the step's created_at are taken when it is sent.
_STAMPED = ("updated_at", "finished_at", "enqueued_at")


@lru_cache(maxsize=64)
def _commit_sql(changed: tuple[str, ...], release: bool, usage: bool) -> tuple[str, tuple, tuple]:
    """The text of the per-step statement for one shape (which task columns change, lease
    renewed or released, prompt usage counted or not), the Task fields whose values are its
    first parameters and the (position, field) of its timestamp parameters. Built once per
    shape: only the values change from step to step."""
    quote = connection.ops.quote_name
    fields = tuple(Task._meta.get_field(name) for name in changed)
    sets = [f"{quote(field.column)} = %s" for field in fields]
    if release:
        sets.append("lease_owner = NULL, lease_expires_at = NULL")
    else:
        sets.append("lease_expires_at = now() + make_interval(secs => %s)")
    insert = step_insert_sql(source="lease")
    # Column names come from the models' fields; every value is a query parameter.
    sql = " ".join([
        f"WITH lease AS (UPDATE {Task._meta.db_table} SET {', '.join(sets)}",  # noqa: S608
        "WHERE id = %s AND lease_owner = %s AND lease_expires_at > now()",
        "RETURNING pause_requested, cancel_requested),",
        f"step AS ({insert}){_usage_sql() if usage else ''}",
        "SELECT lease.pause_requested, lease.cancel_requested, step.id FROM lease, step",
    ])
    stamped = [(position, field) for position, field in enumerate(fields) if field.name in _STAMPED]
    # After the task's values: the lease seconds (when renewed), the task id and the worker.
    offset = len(fields) + (0 if release else 1) + 2
    created = Step._meta.get_field("created_at")
    stamped.append((offset + step_insert_position(created, source="lease"), created))
    return sql, fields, tuple(stamped)


def _usage_sql() -> str:
    """The prompt version's usage counters (prompts.services.prompt_version_record_use's
    increments), only when the step was inserted. Parameters: uses, successes, failures,
    tokens in, tokens out, latency, version id."""
    from prompts.models import PromptVersion

    column = {name: connection.ops.quote_name(PromptVersion._meta.get_field(name).column)
              for name in ("uses", "successes", "failures", "tokens_in_total", "tokens_out_total", "latency_ms_total")}
    sets = ", ".join(f"{quoted} = {quoted} + %s" for quoted in column.values())
    return (f", used AS (UPDATE {PromptVersion._meta.db_table} SET {sets} "  # noqa: S608
            "WHERE id = %s AND EXISTS (SELECT 1 FROM step))")


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
