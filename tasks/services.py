"""Every state change of a task happens here (API, pages, websocket, CLI, webhooks call these).

Concurrency: each service locks the task row (SELECT ... FOR UPDATE). While a worker holds a
live lease, a service only sets a flag (pause_requested / cancel_requested) and the runner
writes the step between two steps; without a live lease the service appends the control
step itself through the step store (tasks/store.py, ``owner=None``), which writes it only
if still no worker holds a live lease and clears a lapsed lease in the same statement: a
worker whose lease lapsed can never commit after it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models.functions import Now
from django.utils import timezone

from agentos.api import ApplicationError, Conflict
from tasks import live
from tasks.models import Step, StepKind, Task, TaskStatus, Trigger
from tasks.options import clean_task_options
from tasks.store import LeaseLost, step_append

ANSWER_MAX_LENGTH = 4000
APPROVE_WORDS = {"approve", "approved", "yes", "y", "ok", "allow", "true"}
DENY_WORDS = {"deny", "denied", "no", "n", "reject", "false"}
logger = logging.getLogger(__name__)


def enqueue(task_id: Any, countdown: float | None = None) -> None:
    """Send ``run_task`` for the task, at once or after ``countdown`` seconds, with its
    owner's fair priority (tasks/fairness.py)."""
    from tasks.fairness import task_priority
    from tasks.jobs import run_task

    try:
        priority = task_priority(task_id)
    except DatabaseError:  # the order is a nicety; the message must go out
        logger.warning("task %s: no fair priority (database error); sent with priority 0", task_id, exc_info=True)
        priority = 0
    run_task.apply_async((str(task_id),), countdown=countdown or None, priority=priority)


def task_create(*, owner, query: str, trigger: str = Trigger.API, trigger_details: dict | None = None,
                options: dict | None = None, callback_url: str | None = None, workspace=None) -> Task:
    """Create a queued task and, once committed, send its first ``run_task`` message.
    ``workspace``: where it goes (default: the owner's default workspace)."""
    query = (query or "").strip() if isinstance(query, str) else ""
    if not query:
        raise ApplicationError("query must not be empty", field="query")
    if len(query) > settings.QUERY_MAX_LENGTH:
        raise ApplicationError(f"query is longer than {settings.QUERY_MAX_LENGTH} characters", field="query")
    if trigger not in Trigger.values:
        raise ApplicationError(f"unknown trigger {trigger!r}", field="trigger")
    cleaned = clean_task_options(options)
    with transaction.atomic():
        task = Task.objects.create(
            owner=owner, workspace=workspace, query=query, trigger=trigger, trigger_details=trigger_details or {},
            options=cleaned,
            callback_url=callback_url or None, step_budget=cleaned.get("step_budget", settings.TASK_STEP_BUDGET),
            enqueued_at=timezone.now())
        # Factor 11: the first step of every task says where it came from.
        _append(task, Step(kind=StepKind.TRIGGER, input={"trigger": trigger, "details": trigger_details or {}}))
        transaction.on_commit(lambda: enqueue(task.id))
    return task


def _locked(task: Task) -> tuple[Task, bool]:
    """The task row, locked for this transaction, and whether a worker holds a live lease."""
    row = Task.objects.select_for_update().annotate(db_now=Now()).get(pk=task.pk)
    live_lease = bool(row.lease_owner and row.lease_expires_at and row.lease_expires_at > row.db_now)
    return row, live_lease


def _append(row: Task, step: Step, **changes) -> Task:
    """Append a control step (the caller holds the row lock and saw no live lease)."""
    try:
        step_append(task=row, step=step, changes=changes)
    except LeaseLost as error:  # a worker took the lease since the row was read
        raise Conflict("a worker is running this task; try again") from error
    return row


def _save(task: Task, fields: list[str]) -> Task:
    """A change of the control flags alone (no step): saved, and announced as a status event."""
    task.save(update_fields=[*fields, "updated_at"])
    event = live.status_event(task)
    transaction.on_commit(lambda: live.publish(task.id, event))
    return task


def _sync(target: Task, source: Task) -> Task:
    """Copy the saved row onto the caller's instance so it sees the new state."""
    for field in Task._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    return target


@transaction.atomic
def task_pause(*, task: Task) -> Task:
    """Pause: takes effect once the step in flight has committed."""
    row, live_lease = _locked(task)
    if row.finished or row.status == TaskStatus.PAUSED or row.pause_requested:
        raise Conflict(f"a {row.status} task cannot be paused" if not row.pause_requested
                       else "a pause is already requested")
    if live_lease:
        row.pause_requested = True
        return _sync(task, _save(row, ["pause_requested"]))
    # A task waiting for the model provider stops waiting (its delayed message finds it paused).
    return _sync(task, _append(row, Step(kind=StepKind.PAUSE), pause_requested=True, status=TaskStatus.PAUSED,
                               provider_error=None))


@transaction.atomic
def task_resume(*, task: Task) -> Task:
    """Resume a paused task, or withdraw a pause that has not taken effect yet; anything else
    is a Conflict. Paused while a question was open (``waiting_for``): back to waiting_human,
    no job. Paused for a provider configuration error: the operator has fixed it, the call
    is tried again."""
    row, _ = _locked(task)
    if row.status != TaskStatus.PAUSED:
        if row.pause_requested and not row.finished:
            row.pause_requested = False  # the pause had not taken effect yet: simply withdraw it
            return _sync(task, _save(row, ["pause_requested"]))
        raise Conflict(f"a {row.status} task cannot be resumed")
    if row.waiting_for:
        return _sync(task, _append(row, Step(kind=StepKind.RESUME), pause_requested=False,
                                   status=TaskStatus.WAITING_HUMAN))
    _append(row, Step(kind=StepKind.RESUME), pause_requested=False, status=TaskStatus.QUEUED,
            enqueued_at=timezone.now(), provider_error=None)
    transaction.on_commit(lambda: enqueue(row.id))
    return _sync(task, row)


@transaction.atomic
def task_retry(*, task: Task) -> Task:
    """Continue a failed task from its last good step: committed steps stay, a ``retry`` step
    is appended, and what failed (the plan, a subtask, the synthesis) runs again with fresh
    error counts and step budget (tasks/engine/decide.py, retry rule)."""
    row, _ = _locked(task)
    if row.status != TaskStatus.FAILED:
        raise Conflict(f"only a failed task can be retried; this task is {row.status}", code="not_failed")
    step = Step(kind=StepKind.RETRY, input={"error": row.error, "provider_error": row.provider_error})
    _append(row, step, status=TaskStatus.QUEUED, error="", finished_at=None, provider_error=None, waiting_for=None,
            pause_requested=False, cancel_requested=False, enqueued_at=timezone.now())
    transaction.on_commit(lambda: enqueue(row.id))
    return _sync(task, row)


@transaction.atomic
def task_cancel(*, task: Task) -> Task:
    row, live_lease = _locked(task)
    if row.finished:
        raise Conflict(f"a {row.status} task cannot be cancelled")
    if row.cancel_requested and live_lease:
        raise Conflict("a cancel is already requested")
    if live_lease:
        row.cancel_requested = True
        return _sync(task, _save(row, ["cancel_requested"]))
    return _sync(task, _append(row, Step(kind=StepKind.CANCEL), cancel_requested=True, status=TaskStatus.CANCELLED,
                               waiting_for=None, finished_at=timezone.now()))


def _approval_answer(answer: Any, approve: Any) -> bool:
    if isinstance(approve, bool):
        return approve
    if approve is not None:
        raise ApplicationError("approve must be true or false", field="approve")
    word = str(answer or "").strip().lower()
    if word in APPROVE_WORDS | DENY_WORDS:
        return word in APPROVE_WORDS
    raise ApplicationError("this task waits for an approval: send {\"approve\": true} or {\"approve\": false}",
                           field="approve")


@transaction.atomic
def task_respond(*, task: Task, answer: str | None = None, approve: bool | None = None, comment: str = "",
                 answered_by: str | None = None) -> Task:
    """Answer the pending question (``answer``) or approval (``approve``, optional ``comment``);
    ``answered_by`` (who answered) is recorded on the response step."""
    row, _ = _locked(task)
    waiting = row.waiting_for
    if row.status not in (TaskStatus.WAITING_HUMAN, TaskStatus.PAUSED) or not waiting:
        raise Conflict(f"the task is {row.status} and is not waiting for an answer")
    comment = str(comment or "").strip()[:ANSWER_MAX_LENGTH]
    data: dict[str, Any] = {"request": waiting.get("step"), "reason": waiting.get("reason"), "comment": comment}
    if answered_by:
        data["answered_by"] = answered_by
    if waiting.get("reason") == "approval":
        data["approve"] = _approval_answer(answer, approve)
        data["tool_call"] = waiting.get("tool_call")
        if answer is not None:
            data["answer"] = str(answer)[:ANSWER_MAX_LENGTH]
    else:
        if approve is not None:
            raise ApplicationError('this task waits for an answer to its question, not an approval: send '
                                   '{"answer": "..."}', field="approve", code="not_an_approval")
        if not isinstance(answer, str) or not answer.strip():
            raise ApplicationError("answer must be a non-empty string", field="answer")
        if len(answer) > ANSWER_MAX_LENGTH:
            raise ApplicationError(f"answer is longer than {ANSWER_MAX_LENGTH} characters", field="answer")
        data["answer"] = answer.strip()
    step = Step(kind=StepKind.HUMAN_RESPONSE, agent=waiting.get("agent") or "", subtask_id=waiting.get("subtask") or "",
                input=data)
    if row.status != TaskStatus.WAITING_HUMAN:  # paused: the answer waits for the resume
        return _sync(task, _append(row, step, waiting_for=None))
    _append(row, step, waiting_for=None, status=TaskStatus.QUEUED, enqueued_at=timezone.now())
    transaction.on_commit(lambda: enqueue(row.id))
    return _sync(task, row)
