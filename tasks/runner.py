"""The durable loop: run a slice of a task's steps under a lease, one committed step at a time.

``run_slice(task_id)`` (called by the ``run_task`` Celery job):

1. Take the lease (tasks/leases.py); its statement also reads the enabled agents, disabled
   tools, active prompt versions and tool providers' versions (tasks/lookups.py). Without
   the lease, return.
2. The step log comes with the lease (the same statement); the state then lives in memory
   for the slice.
3. Loop, within TASK_SLICE_SECONDS / TASK_SLICE_STEPS:
   a. decide: ``decide(state)``, the pure engine (tasks/engine);
   b. execute: the action's LLM or tool call, outside any transaction
      (tasks/execution.py; whatever it raises becomes an error step);
   c. store: ``step_append`` (tasks/store.py) commits the step with the task's changes
      under the lease, in one statement, and returns the pause/cancel flags; "lease lost"
      ends the slice with nothing written. The store publishes the step after the commit.
   A step whose commit is lost (worker killed, lease lost) is decided and executed again
   by the next holder at the same index, so a tool sees the same idempotency key.
4. The slice's last commit releases the lease; a still-running task is re-enqueued after
   that commit (fairness between tasks), a task waiting for the model provider after its
   delay (tasks/outage.py).

Nothing escapes a slice without a visible reason: a step the database refuses is replaced
by an ``internal_error`` step of the same action, and an unexpected exception of the loop
itself fails the task with ``internal_error`` (a retry continues it). Only a database that
cannot be reached ends the job, and then the lease lapses and another worker continues.

While a call runs, the process's heartbeat (tasks/leases.py, ``keeper``) keeps the lease
alive; if the process dies, its leases lapse within seconds and another worker continues.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from kombu.exceptions import OperationalError as BrokerError

from observability import hooks as observe
from tasks.context import record_from_step
from tasks.engine import actions as a
from tasks.engine import decide, estimate_total_steps, progress, subtask_results, waiting_for
from tasks.engine.state import StepRecord, TaskState
from tasks.execution import Run, execute, failed_step
from tasks.leases import keeper, lease_acquire, lease_release, new_worker_id
from tasks.lookups import load_state, lookups_sql, parse_lookups
from tasks.models import Step, StepKind, Task, TaskStatus
from tasks.outage import task_provider_error
from tasks.store import Flags, LeaseLost, step_append
from tools.registry import enabled_tools

logger = logging.getLogger(__name__)

_FINAL_STATUS = {a.Complete: TaskStatus.COMPLETED, a.Fail: TaskStatus.FAILED, a.Cancel: TaskStatus.CANCELLED}
_OUTCOMES = {TaskStatus.PAUSED: "paused", TaskStatus.WAITING_HUMAN: "waiting",
             TaskStatus.WAITING_PROVIDER: "waiting_provider"}


@dataclass
class SliceResult:
    outcome: str  # no_lease | lost_lease | continue | paused | waiting | waiting_provider | finished | internal_error
    steps: int = 0


def run_slice(task_id, worker_id: str | None = None) -> SliceResult:
    worker_id = worker_id or new_worker_id()
    task = lease_acquire(task_id, worker_id, also=lookups_sql())
    if task is None:
        return SliceResult("no_lease")
    keeper.register(task.pk, worker_id)
    try:
        with observe.slice_scope(task, worker_id):  # log context and trace span of the slice
            return _run(task, worker_id)
    except (OperationalError, InterfaceError, BrokerError):
        raise  # the database or broker is out of reach: the lease lapses, the task is taken over later
    except Exception as error:  # a bug in the loop: fail the task visibly rather than loop forever
        logger.exception("task %s: the slice failed", task.pk)
        return _fail_internal(task, worker_id, error)
    finally:
        keeper.unregister(worker_id)


def _run(task: Task, worker_id: str) -> SliceResult:
    lookups = parse_lookups(task.also)
    tools = {spec.name: spec for spec in enabled_tools(lookups.disabled_tools, lookups.tool_versions)}
    state = load_state(task, lookups.agents, tools.values(), steps=lookups.steps)
    run = Run(task=task, state=state, tools=tools, active_prompts=lookups.active_prompts, rollouts=lookups.rollouts)
    started, done = time.monotonic(), 0
    while True:
        # 1. decide
        action = observe.budget_action(task, decide(state))  # the task's cost budget, if any
        if isinstance(action, (a.Done, a.Idle, a.Wait)):
            return _finish(task, worker_id, action, done)
        # 2. execute
        step = observe.traced_execute(execute, run, action)
        # 3. store
        step.index = state.next_index
        record = record_from_step(step)
        changes = task_changes(task, state, action, record)
        last = done + 1 >= settings.TASK_SLICE_STEPS or time.monotonic() - started >= settings.TASK_SLICE_SECONDS
        release = last or changes["status"] != TaskStatus.RUNNING
        requeue = release and changes["status"] == TaskStatus.RUNNING
        if requeue:
            changes["enqueued_at"] = timezone.now()
        try:
            flags, stored = _append(run, action, step, changes, worker_id, release)
        except LeaseLost:
            logger.warning("task %s: lease lost before step %s could commit", task.pk, step.index)
            return SliceResult("lost_lease", done)
        done += 1
        if stored is not step:  # the database refused the step; its replacement was stored
            step, record = stored, record_from_step(stored)
        state.steps.append(record)
        state.pause_requested, state.cancel_requested = flags.pause_requested, flags.cancel_requested
        if requeue or task.status == TaskStatus.WAITING_PROVIDER:
            from tasks.services import enqueue

            enqueue(task.pk, countdown=(step.input or {}).get("delay_s") if not requeue else None)
        if task.status != TaskStatus.RUNNING:
            return SliceResult(_OUTCOMES.get(task.status, "finished"), done)
        if last:
            return SliceResult("continue", done)


def _append(run: Run, action, step: Step, changes: dict, worker_id: str, release: bool) -> tuple[Flags, Step]:
    """``step_append``, and the step written: a step the database refuses (a value it cannot
    store) is replaced by an ``internal_error`` step of the same action, so the log moves on
    visibly."""
    try:
        return step_append(task=run.task, step=step, changes=changes, owner=worker_id, release=release), step
    except (OperationalError, InterfaceError):
        raise
    except DatabaseError as error:  # LeaseLost is no DatabaseError; an IntegrityError became LeaseLost
        logger.exception("task %s: step %s could not be stored", run.task.pk, step.index)
        line = (str(error).strip().splitlines() or [""])[0]
        replacement = failed_step(run, action, f"internal_error: {type(error).__name__}: {line}"[:300])
        replacement.index = step.index
        changes = task_changes(run.task, run.state, action, record_from_step(replacement))
        return step_append(task=run.task, step=replacement, changes=changes, owner=worker_id,
                           release=release), replacement


def task_changes(task: Task, state: TaskState, action, record: StepRecord) -> dict:
    """The task's new status and derived columns once ``record`` is in its log."""
    steps = [*state.steps, record]
    view = TaskState(**{**state.__dict__, "steps": steps})
    changes = {"status": TaskStatus.RUNNING, "progress": max(task.progress, progress(view)),
               "total_steps": estimate_total_steps(view), "intermediate_results": subtask_results(steps)}
    fault = task_provider_error(record)
    if fault is not None:  # the provider failed, not the model (tasks/outage.py)
        changes["provider_error"] = fault
        if record.kind == StepKind.PROVIDER_WAIT:
            changes.update(status=TaskStatus.WAITING_PROVIDER, enqueued_at=parse_datetime(fault["next_try_at"]))
        elif record.kind == StepKind.PAUSE:
            changes["status"] = TaskStatus.PAUSED
        else:
            changes.update(status=TaskStatus.FAILED, finished_at=timezone.now(), error=record.error)
        return changes
    if task.provider_error:
        changes["provider_error"] = None
    final = _FINAL_STATUS.get(type(action))
    if final:
        changes.update(status=final, finished_at=timezone.now(), waiting_for=None)
        if isinstance(action, a.Complete):
            changes.update(result=action.result, progress=1.0)
        if isinstance(action, a.Fail):
            changes["error"] = action.reason
    elif isinstance(action, a.Pause):
        changes["status"] = TaskStatus.PAUSED
    elif isinstance(action, a.AskHuman):
        changes.update(status=TaskStatus.WAITING_HUMAN, waiting_for=waiting_for(record))
    # Derived columns most steps leave as they are are not rewritten (a smaller statement).
    for name in ("progress", "intermediate_results"):
        if changes[name] == getattr(task, name):
            del changes[name]
    return changes


def _finish(task: Task, worker_id: str, action, done: int) -> SliceResult:
    """Nothing to run now: make the status match the log and give the lease back."""
    fields: dict = {}
    if isinstance(action, a.Wait):
        fields = {"status": TaskStatus.WAITING_HUMAN, "waiting_for": action.waiting_for}
    elif isinstance(action, a.Idle):
        fields = {"status": TaskStatus.PAUSED}
    lease_release(task.pk, worker_id, **fields)
    return SliceResult({a.Wait: "waiting", a.Idle: "paused"}.get(type(action), "finished"), done)


def _fail_internal(task: Task, worker_id: str, error: Exception) -> SliceResult:
    """End the task with a task-level ``internal_error`` step (if the lease is still ours)."""
    line = (str(error).strip().splitlines() or [""])[0]
    step = Step(kind=StepKind.ERROR, status="error", error=f"internal_error: {type(error).__name__}: {line}"[:300])
    changes = {"status": TaskStatus.FAILED, "finished_at": timezone.now(), "error": step.error, "waiting_for": None}
    try:
        step_append(task=task, step=step, changes=changes, owner=worker_id, release=True)
    except LeaseLost:
        return SliceResult("lost_lease")
    return SliceResult("internal_error")
