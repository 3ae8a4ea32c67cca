"""The durable loop: run a slice of a task's steps under a lease, one committed step at a time.

``run_slice(task_id)`` (called by the ``run_task`` Celery job):

1. Take the lease (tasks/leases.py); its statement also reads the enabled agents, disabled
   tools and active prompt versions (tasks/lookups.py). Without the lease, return.
2. Load the step log once; the state then lives in memory for the slice.
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
   that commit (fairness between tasks).

While a call runs, the process's heartbeat (tasks/leases.py, ``keeper``) keeps the lease
alive; if the process dies, its leases lapse within seconds and another worker continues.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from observability import hooks as observe
from tasks.context import record_from_step
from tasks.engine import actions as a
from tasks.engine import decide, estimate_total_steps, progress, subtask_results, waiting_for
from tasks.engine.state import StepRecord, TaskState
from tasks.execution import Run, execute
from tasks.leases import keeper, lease_acquire, lease_release, new_worker_id
from tasks.lookups import load_state, lookups_sql, parse_lookups
from tasks.models import Task, TaskStatus
from tasks.store import LeaseLost, step_append
from tools.registry import enabled_tools

logger = logging.getLogger(__name__)

_FINAL_STATUS = {a.Complete: TaskStatus.COMPLETED, a.Fail: TaskStatus.FAILED, a.Cancel: TaskStatus.CANCELLED}
_OUTCOMES = {TaskStatus.PAUSED: "paused", TaskStatus.WAITING_HUMAN: "waiting"}


@dataclass
class SliceResult:
    outcome: str  # no_lease | lost_lease | continue | paused | waiting | finished | idle
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
    finally:
        keeper.unregister(worker_id)


def _run(task: Task, worker_id: str) -> SliceResult:
    lookups = parse_lookups(task.also)
    tools = {spec.name: spec for spec in enabled_tools(lookups.disabled_tools)}
    run = Run(task=task, state=load_state(task, lookups.agents), tools=tools, active_prompts=lookups.active_prompts)
    state, started, done = run.state, time.monotonic(), 0
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
            flags = step_append(task=task, step=step, changes=changes, owner=worker_id, release=release)
        except LeaseLost:
            logger.warning("task %s: lease lost before step %s could commit", task.pk, record.index)
            return SliceResult("lost_lease", done)
        done += 1
        state.steps.append(record)
        state.pause_requested, state.cancel_requested = flags.pause_requested, flags.cancel_requested
        if requeue:
            from tasks.services import enqueue

            enqueue(task.pk)
        if task.status != TaskStatus.RUNNING:
            return SliceResult(_OUTCOMES.get(task.status, "finished"), done)
        if last:
            return SliceResult("continue", done)


def task_changes(task: Task, state: TaskState, action, record: StepRecord) -> dict:
    """The task's new status and derived columns once ``record`` is in its log."""
    steps = [*state.steps, record]
    view = TaskState(**{**state.__dict__, "steps": steps})
    changes = {"status": TaskStatus.RUNNING, "progress": max(task.progress, progress(view)),
               "total_steps": estimate_total_steps(view), "intermediate_results": subtask_results(steps)}
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

