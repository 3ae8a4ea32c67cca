"""The step store: the only writer of steps and of the task's step counters.

One contract, for the runner and for the services (pause, resume, cancel, human answers,
task creation):

    flags = step_append(task=task, step=step, changes={...}, owner=worker_id)

appends ``step`` at index ``task.step_count`` together with the task's changes (status,
progress, results...) and the counters (``step_count``, ``total_steps``), and returns the
task's pause/cancel flags as they are after the commit; or raises :class:`LeaseLost`, and
then nothing was written.

Who may append:
- ``owner=<worker id>`` (the runner): only while that worker holds a live lease
  (``lease_owner = me AND lease_expires_at > now()``). Both halves matter: a worker whose
  lease ran out must not commit even when nobody has taken the task over yet, because a
  service may already have written a step in its place. The lease is renewed, or released
  with ``release=True``.
- ``owner=None`` (a service, under the task's row lock): only while NO worker holds a live
  lease; a lapsed lease is cleared in the same statement, so its former holder can never
  write after this step.
In both cases the log must still have ``task.step_count`` steps (the caller's view of the
log is current), and ``unique(task, index)`` refuses a second step N whatever happens.

It is ONE statement (one round trip, atomic by itself in autocommit): the conditional
UPDATE of the task row (fencing, row lock, changes), the INSERT of the step only when that
UPDATE matched, and the prompt version's usage counters (prompts.services'
``prompt_version_use_increments``) only when the step was inserted, so a committed LLM step
is counted exactly once. After the commit (``transaction.on_commit``: at once in
autocommit) the step is published to the task's live group and, when the status changed,
``tasks.signals.task_status_changed`` is sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from observability import hooks as observe
from tasks import live
from tasks.models import Step, Task
from tasks.signals import task_status_changed

logger = logging.getLogger(__name__)
PREPARE_THRESHOLD = 5  # psycopg's default; prepare=True prepares on first use anyway

# Step kinds whose prompt version's usage is counted (a model call was made or attempted).
_MODEL_KINDS = frozenset({"plan", "llm", "summary", "synthesis"})


class LeaseLost(Exception):
    """Nothing was written: the caller may no longer append to this task (its lease expired
    or was taken over, a worker holds the lease a service needed, or the log moved on)."""


@dataclass(frozen=True)
class Flags:
    pause_requested: bool
    cancel_requested: bool


def step_append(*, task: Task, step: Step, changes: dict[str, Any] | None = None, owner: str | None = None,
                release: bool = False) -> Flags:
    """Append ``step`` (an unsaved Step) at ``task.step_count`` with ``changes`` to the task
    (field name -> value); see the module docstring. On success ``task`` and ``step`` hold
    what was written (index, pk, counters, timestamps)."""
    changes = dict(changes or {})
    now = timezone.now()
    index = task.step_count
    changes["step_count"] = index + 1
    # A step the caller did not estimate (a control step) adds one to the estimate.
    changes["total_steps"] = max(changes.get("total_steps", task.total_steps + 1), index + 1)
    changes["updated_at"] = now
    step.task_id, step.index, step.created_at = task.pk, index, now
    observe.before_store(task, step, changes)  # the step's cost, added to the task's
    usage = _usage(step)
    lease = "service" if owner is None else ("release" if release else "renew")
    columns = tuple(changes)
    sql = _append_sql(columns, lease, tuple(usage) if usage else ())
    params = [_task_field(name).get_db_prep_save(changes[name], connection) for name in columns]
    if lease == "renew":
        params.append(settings.TASK_LEASE_SECONDS)
    params += [task.pk, index]
    if owner is not None:
        params.append(owner)
    params += [field.get_db_prep_save(getattr(step, field.attname), connection) for field in _step_fields()]
    if usage:
        params += [*usage.values(), usage_version_id(step)]
    try:
        row = _execute(sql, params)
    except IntegrityError as error:  # unique(task, index): another writer committed step N
        raise LeaseLost(f"task {task.pk}: step {index} already exists") from error
    if row is None:
        raise LeaseLost(f"task {task.pk}: step {index} not written (lease not held or log moved on)")
    pause, cancel, step.pk = row
    step._state.adding, step._state.db = False, connection.alias
    old_status = task.status
    for name, value in changes.items():
        setattr(task, name, value)
    if owner is None or release:
        task.lease_owner = task.lease_expires_at = None
    task.pause_requested, task.cancel_requested = bool(pause), bool(cancel)
    _after_commit(task, step, old_status)
    observe.after_store(task, step)  # metrics, after the commit
    return Flags(bool(pause), bool(cancel))


def _execute(sql: str, params: list) -> tuple | None:
    """Run the statement with server-side binding, prepared on its first use per connection
    (psycopg's own prepared statements): the step's JSON is bound, not quoted into the SQL
    text, and the CTE is planned once per shape and connection. Django's errors."""
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        # Django turns psycopg's statement preparation off for the connection; its own
        # cursors bind on the client and never prepare, so this changes only this cursor's.
        raw.prepare_threshold = PREPARE_THRESHOLD
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchone()


def _after_commit(task: Task, step: Step, old_status: str) -> None:
    event = live.step_event(task, step)  # the task as this step left it
    task_id, status = task.pk, task.status
    transaction.on_commit(lambda: live.publish(task_id, event))
    if status != old_status:
        transaction.on_commit(lambda: _status_changed(task, status))


def _status_changed(task: Task, status: str) -> None:
    # After the commit: a receiver's failure must neither undo nor repeat the step.
    for receiver, result in task_status_changed.send_robust(sender=Task, task=task, status=str(status)):
        if isinstance(result, Exception):
            logger.error("task %s: %r failed on status %s", task.pk, receiver, status, exc_info=result)


def usage_version_id(step: Step) -> int | None:
    """The prompt version an LLM step rendered (recorded in its context), if any."""
    context = step.context if isinstance(step.context, dict) else None
    return (context or {}).get("version_id") if step.kind in _MODEL_KINDS else None


def _usage(step: Step) -> dict[str, int] | None:
    from prompts.services import prompt_version_use_increments

    if not usage_version_id(step):
        return None
    return prompt_version_use_increments(success=step.status == "ok", tokens_in=step.tokens_in,
                                         tokens_out=step.tokens_out, latency_ms=step.duration_ms)


def _task_field(name: str):
    return Task._meta.get_field(name)


@lru_cache(maxsize=1)
def _step_fields() -> tuple:
    return tuple(field for field in Step._meta.concrete_fields if not field.primary_key)


def _cast(field) -> str:
    # A parameter in a SELECT list has no type of its own; strings as text (a cast to
    # varchar(n) would truncate silently, the column itself raises).
    kind = field.get_internal_type()
    return "text" if kind in ("CharField", "TextField") else field.db_type(connection)


@lru_cache(maxsize=128)
def _append_sql(columns: tuple[str, ...], lease: str, usage: tuple[str, ...]) -> str:
    """The statement for one shape (which task columns change, the lease mode, which usage
    counters), built once per shape from the models' metadata; every value is a parameter.

    Parameters, in order: the task's new values; the lease seconds (lease "renew"); the task
    id; the expected index; the worker id (unless lease "service"); the step's fields; the
    usage increments and the prompt version id (when ``usage``).
    """
    from prompts.models import PromptVersion

    quote = connection.ops.quote_name
    sets = [f"{quote(_task_field(name).column)} = %s" for name in columns]
    if lease == "renew":
        sets.append("lease_expires_at = now() + make_interval(secs => %s)")
    else:
        sets.append("lease_owner = NULL, lease_expires_at = NULL")
    if lease == "service":
        guard = "(lease_owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= now())"
    else:
        guard = "lease_owner = %s AND lease_expires_at > now()"
    fields = _step_fields()
    insert_columns = ", ".join(quote(field.column) for field in fields)
    values = ", ".join(f"%s::{_cast(field)}" for field in fields)
    # Table and column names come from the models; values are parameters.
    parts = [
        f"WITH task AS (UPDATE {Task._meta.db_table} SET {', '.join(sets)} "  # noqa: S608
        f"WHERE id = %s AND step_count = %s AND {guard} RETURNING pause_requested, cancel_requested), "
        f"step AS (INSERT INTO {Step._meta.db_table} ({insert_columns}) SELECT {values} FROM task RETURNING id)",
    ]
    if usage:
        counters = ", ".join(f"{quote(PromptVersion._meta.get_field(name).column)} = "
                             f"{quote(PromptVersion._meta.get_field(name).column)} + %s" for name in usage)
        parts.append(f", used AS (UPDATE {PromptVersion._meta.db_table} SET {counters} "  # noqa: S608
                     "WHERE id = %s AND EXISTS (SELECT 1 FROM step))")
    parts.append(" SELECT task.pause_requested, task.cancel_requested, step.id FROM task, step")
    return "".join(parts)


def steps_copy(*, task: Task, steps: list[Step], changes: dict[str, Any] | None = None) -> None:
    """Write ``steps`` (unsaved Steps that already carry their index, created_at and data) at
    the end of ``task``'s log, with ``changes`` to the task: the bulk path of imports and
    forks, whose steps record calls made elsewhere or earlier.

    The guard of a service append (``owner=None``): the task's counters move only while no
    worker holds a live lease and the log still has ``task.step_count`` steps; otherwise
    :class:`LeaseLost`, and nothing was written. The steps must continue the log (indexes
    ``task.step_count``, ``+1``, ...). Call it inside the caller's transaction: the task row
    is updated first (it takes the row lock), then the steps are inserted.

    Unlike ``step_append``: prompt usage counters do not move (those model calls were made,
    and counted, where they ran), no step is published and ``task_status_changed`` is not
    sent (nothing ran here); one status event is published after the commit.
    """
    from django.db.models import Q
    from django.db.models.functions import Now

    steps = list(steps)
    start = task.step_count
    if [step.index for step in steps] != list(range(start, start + len(steps))):
        raise ValueError(f"task {task.pk}: copied steps must continue the log at index {start}")
    changes = dict(changes or {})
    changes["step_count"] = start + len(steps)
    changes["total_steps"] = max(changes.get("total_steps", 0), start + len(steps))
    changes["updated_at"] = timezone.now()
    free = Q(lease_owner__isnull=True) | Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=Now())
    with transaction.atomic():
        updated = Task.objects.filter(free, pk=task.pk, step_count=start).update(
            lease_owner=None, lease_expires_at=None, **changes)
        if not updated:
            raise LeaseLost(f"task {task.pk}: steps from {start} not copied (a worker holds the lease or the log "
                            "moved on)")
        if steps:
            _insert_steps(task, steps)
    for name, value in changes.items():
        setattr(task, name, value)
    task.lease_owner = task.lease_expires_at = None
    event = live.status_event(task)
    transaction.on_commit(lambda: live.publish(task.pk, event))


COPY_BATCH = 500


def _insert_steps(task: Task, steps: list[Step]) -> None:
    # A plain INSERT, not bulk_create: created_at is auto_now_add, which bulk_create would
    # overwrite, and a copied step keeps the time it was first committed.
    fields = _step_fields()
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {Step._meta.db_table} ({columns}) VALUES ({placeholders})"  # noqa: S608 (names from the model)
    for step in steps:
        step.task_id = task.pk
        if step.created_at is None:
            step.created_at = timezone.now()
    with connection.cursor() as cursor:
        for start in range(0, len(steps), COPY_BATCH):
            batch = steps[start:start + COPY_BATCH]
            cursor.executemany(sql, [[field.get_db_prep_save(getattr(step, field.attname), connection)
                                      for field in fields] for step in batch])
    for step in steps:
        step._state.adding, step._state.db = False, connection.alias
