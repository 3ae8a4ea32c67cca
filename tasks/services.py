"""Every state change of a task happens here (API, pages, websocket, CLI, webhooks call these).

Concurrency: each service locks the task row (SELECT ... FOR UPDATE, or the conditional
UPDATE of a one-statement service such as the resume of a paused task). While a worker holds
a live lease, a service only sets a flag (pause_requested / cancel_requested) and the
runner writes the step between two steps; without a live lease the service writes the
control step itself, at the next index, under the row lock. A worker whose lease lapsed
cannot commit over it: its fenced UPDATE checks the lease and the (task, index) unique
constraint refuses a second step N.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Now
from django.utils import timezone

from agentos.api import ApplicationError, Conflict
from tasks import live
from tasks.models import Step, StepKind, Task, TaskStatus, Trigger
from tasks.options import clean_task_options
from tasks.sql import step_insert

ANSWER_MAX_LENGTH = 4000
APPROVE_WORDS = {"approve", "approved", "yes", "y", "ok", "allow", "true"}
DENY_WORDS = {"deny", "denied", "no", "n", "reject", "false"}


def enqueue(task_id: Any) -> None:
    from tasks.jobs import run_task

    run_task.delay(str(task_id))


def task_create(*, owner, query: str, trigger: str = Trigger.API, trigger_details: dict | None = None,
                options: dict | None = None, callback_url: str | None = None) -> Task:
    """Create a queued task and, once committed, send its first ``run_task`` message."""
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
            owner=owner, query=query, trigger=trigger, trigger_details=trigger_details or {}, options=cleaned,
            callback_url=callback_url or None, step_budget=cleaned.get("step_budget", settings.TASK_STEP_BUDGET),
            enqueued_at=timezone.now())
        # Factor 11: the first step of every task says where it came from.
        _write_step(task, StepKind.TRIGGER, input={"trigger": trigger, "details": trigger_details or {}})
        task.save(update_fields=["step_count", "total_steps"])
        transaction.on_commit(lambda: enqueue(task.id))
    return task


def _locked(task: Task) -> tuple[Task, bool]:
    """The task row, locked for this transaction, and whether a worker holds a live lease."""
    row = Task.objects.select_for_update().annotate(db_now=Now()).get(pk=task.pk)
    live_lease = bool(row.lease_owner and row.lease_expires_at and row.lease_expires_at > row.db_now)
    return row, live_lease


def _write_step(task: Task, kind: str, **fields) -> Step:
    """Append a control step under the row lock (the caller checked there is no live lease)."""
    step = Step(task=task, index=task.step_count, kind=kind, **fields)
    step.save()
    task.step_count += 1
    task.total_steps = max(task.total_steps + 1, task.step_count)
    return step


def _save(task: Task, step: Step | None, fields: list[str]) -> Task:
    task.save(update_fields=[*fields, "updated_at"])
    event = live.step_event(task, step) if step else live.status_event(task)
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
    row.pause_requested = True
    if live_lease:
        return _sync(task, _save(row, None, ["pause_requested"]))
    step = _write_step(row, StepKind.PAUSE)
    row.status = TaskStatus.PAUSED
    return _sync(task, _save(row, step, ["pause_requested", "status", "step_count", "total_steps"]))


def task_resume(*, task: Task) -> Task:
    """Resume a paused task (one statement, _resume_paused), or withdraw a pause that has
    not taken effect yet; anything else is a Conflict."""
    row = _resume_paused(task)
    if row is not None:
        return _sync(task, row)
    return _resume_locked(task)


def _resume_paused(task: Task) -> Task | None:
    """The common case of a resume, a paused task, in ONE statement (the row lock, the
    task update and the resume step together, like the runner's step commit), so the
    worker gets the job a few milliseconds sooner. None when the task is not paused.

    ``waiting_for`` set (paused while a question was open): back to waiting_human, no job.
    """
    now = timezone.now()
    step = Step(task_id=task.pk, index=0, kind=StepKind.RESUME, created_at=now)
    insert, insert_params = step_insert(step, source="task", index_sql="task.step_count - 1")
    waiting = "(waiting_for IS NOT NULL AND waiting_for NOT IN ('null'::jsonb, '{}'::jsonb, '[]'::jsonb))"
    table = Task._meta.db_table
    # The table name comes from the model; every value is a parameter.
    sql = (
        f"WITH task AS (UPDATE {table} SET pause_requested = false, "  # noqa: S608
        f"status = CASE WHEN {waiting} THEN %s ELSE %s END, "
        f"enqueued_at = CASE WHEN {waiting} THEN enqueued_at ELSE %s END, "
        "step_count = step_count + 1, total_steps = greatest(total_steps + 1, step_count + 1), updated_at = %s "
        "WHERE id = %s AND status = %s RETURNING *), "
        f"step AS ({insert}) "
        "SELECT task.*, step.id AS resume_step_id FROM task, step"
    )
    params = [TaskStatus.WAITING_HUMAN, TaskStatus.QUEUED, now, now, task.pk, TaskStatus.PAUSED, *insert_params]
    # One statement is atomic by itself: no BEGIN/COMMIT round trips around it. Inside a
    # caller's transaction the job and the event still wait for that transaction's commit.
    rows = list(Task.objects.raw(sql, params))
    if not rows:
        return None
    row = rows[0]
    step.pk, step.index = row.resume_step_id, row.step_count - 1
    step._state.adding = False
    if row.status == TaskStatus.QUEUED:
        transaction.on_commit(lambda: enqueue(row.id))
    event = live.step_event(row, step)
    transaction.on_commit(lambda: live.publish(row.id, event))
    return row


@transaction.atomic
def _resume_locked(task: Task) -> Task:
    """The cases _resume_paused leaves: withdraw a pause not yet taken, or refuse."""
    row, _ = _locked(task)
    if row.status != TaskStatus.PAUSED:
        if row.pause_requested and not row.finished:
            row.pause_requested = False  # the pause had not taken effect yet: simply withdraw it
            return _sync(task, _save(row, None, ["pause_requested"]))
        raise Conflict(f"a {row.status} task cannot be resumed")
    # Paused after all (the runner committed the pause since _resume_paused looked): the
    # one resume statement, now under this transaction's row lock.
    return _sync(task, _resume_paused(row))


@transaction.atomic
def task_cancel(*, task: Task) -> Task:
    row, live_lease = _locked(task)
    if row.finished:
        raise Conflict(f"a {row.status} task cannot be cancelled")
    if row.cancel_requested and live_lease:
        raise Conflict("a cancel is already requested")
    row.cancel_requested = True
    if live_lease:
        return _sync(task, _save(row, None, ["cancel_requested"]))
    step = _write_step(row, StepKind.CANCEL)
    row.status, row.waiting_for, row.finished_at = TaskStatus.CANCELLED, None, timezone.now()
    row.lease_owner = row.lease_expires_at = None
    return _sync(task, _save(row, step, ["cancel_requested", "status", "waiting_for", "finished_at", "lease_owner",
                                         "lease_expires_at", "step_count", "total_steps"]))


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
def task_respond(*, task: Task, answer: str | None = None, approve: bool | None = None, comment: str = "") -> Task:
    """Answer the pending question (``answer``) or approval (``approve``, optional ``comment``)."""
    row, _ = _locked(task)
    waiting = row.waiting_for
    if row.status not in (TaskStatus.WAITING_HUMAN, TaskStatus.PAUSED) or not waiting:
        raise Conflict(f"the task is {row.status} and is not waiting for an answer")
    comment = str(comment or "").strip()[:ANSWER_MAX_LENGTH]
    data: dict[str, Any] = {"request": waiting.get("step"), "reason": waiting.get("reason"), "comment": comment}
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
    step = _write_step(row, StepKind.HUMAN_RESPONSE, agent=waiting.get("agent") or "",
                       subtask_id=waiting.get("subtask") or "", input=data)
    row.waiting_for = None
    fields = ["waiting_for", "step_count", "total_steps"]
    if row.status == TaskStatus.WAITING_HUMAN:
        row.status, row.enqueued_at = TaskStatus.QUEUED, timezone.now()
        fields += ["status", "enqueued_at"]
        transaction.on_commit(lambda: enqueue(row.id))
    return _sync(task, _save(row, step, fields))
