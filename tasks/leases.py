"""Leases on task rows: who may run a task's steps, and until when.

- ``lease_acquire``: a conditional UPDATE. It succeeds only for an active task (queued or
  running) whose lease is free, expired, or already ours. Without it a worker does nothing,
  so a re-delivered or duplicated ``run_task`` message can never run a step twice.
- Every step commit renews the lease in the same transaction that checks it (fencing, see
  tasks/runner.py). For an LLM or tool call longer than a third of the lease, the per-process
  :class:`LeaseKeeper` thread renews the leases of the slices running in this process.
- ``requeue_expired_leases`` (Celery beat, every TASK_REQUEUE_INTERVAL seconds) frees leases of
  crashed workers and re-enqueues those tasks, and re-enqueues queued tasks whose message
  was lost (nobody picked them up for TASK_REQUEUE_AFTER_SECONDS).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.db.models.functions import Now

from tasks.models import ACTIVE_STATUSES, Task, TaskStatus

logger = logging.getLogger(__name__)


def new_worker_id() -> str:
    """Unique per slice: two threads of one process never share a lease."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def lease_acquire(task_id, worker_id: str, *, also: str = "") -> Task | None:
    """Take the lease (and move a queued task to running); the task, or None without a lease.

    One statement: the conditional UPDATE returns the row it changed, so a slice starts with
    a single round trip. ``also``: an SQL expression without parameters evaluated in the
    same statement (the runner reads what a slice needs besides the task there); its value
    is the returned task's ``also`` attribute.
    """
    try:
        ident = uuid.UUID(str(task_id))
    except ValueError:
        return None
    table = Task._meta.db_table
    extra = f", ({also}) AS also" if also else ""
    rows = list(Task.objects.raw(
        f"WITH leased AS (UPDATE {table} SET lease_owner = %s, "  # noqa: S608 (the table name comes from the model)
        "lease_expires_at = now() + make_interval(secs => %s), "
        "status = CASE WHEN status = %s THEN %s ELSE status END "
        "WHERE id = %s AND status IN (%s, %s) "
        f"AND (lease_owner IS NULL OR lease_expires_at < now() OR lease_owner = %s) RETURNING *) "
        f"SELECT leased.*{extra} FROM leased",
        [worker_id, settings.TASK_LEASE_SECONDS, TaskStatus.QUEUED, TaskStatus.RUNNING, ident,
         TaskStatus.QUEUED, TaskStatus.RUNNING, worker_id]))
    return rows[0] if rows else None


def lease_release(task_id, worker_id: str, **fields) -> bool:
    """Give the lease back (optionally setting fields) if it is still ours."""
    return bool(Task.objects.filter(pk=task_id, lease_owner=worker_id).update(
        lease_owner=None, lease_expires_at=None, **fields))


def requeue_expired_leases() -> list[str]:
    """Re-enqueue active tasks whose worker vanished or whose message was lost; their ids."""
    from tasks.services import enqueue

    stale = Q(lease_owner__isnull=False, lease_expires_at__lt=Now())
    lost = Q(lease_owner__isnull=True) & (
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=Now() - timedelta(seconds=settings.TASK_REQUEUE_AFTER_SECONDS)))
    candidates = Task.objects.filter(stale | lost, status__in=ACTIVE_STATUSES)
    ids = []
    for task_id in candidates.values_list("pk", flat=True)[:500]:
        # Conditional again per row: a worker may have taken the task since the SELECT.
        if Task.objects.filter(stale | lost, pk=task_id, status__in=ACTIVE_STATUSES).update(
                lease_owner=None, lease_expires_at=None, enqueued_at=Now()):
            enqueue(task_id)
            ids.append(str(task_id))
    if ids:
        logger.info("re-enqueued %d task(s) with an expired lease or a lost message", len(ids))
    return ids


class LeaseKeeper:
    """One daemon thread per process renewing the leases of the slices that are running.

    Commits renew leases too; the keeper matters while one LLM or tool call outlasts a third
    of the lease. A lease it fails to renew (expired and taken over) is reported as lost, and
    the slice stops before its next step.
    """

    def __init__(self) -> None:
        self._held: dict[str, str] = {}  # worker_id -> task id
        self._lost: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def register(self, task_id, worker_id: str) -> None:
        with self._lock:
            self._held[worker_id] = str(task_id)
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="lease-keeper", daemon=True)
                self._thread.start()

    def unregister(self, worker_id: str) -> None:
        with self._lock:
            self._held.pop(worker_id, None)
            self._lost.discard(worker_id)

    def lost(self, worker_id: str) -> bool:
        return worker_id in self._lost

    def _loop(self) -> None:
        interval = max(settings.TASK_LEASE_SECONDS / 3, 0.5)
        while not self._wake.wait(interval):
            with self._lock:
                held = dict(self._held)
            if not held:
                continue
            try:
                self._renew(held)
            except Exception:  # a database hiccup: try again next round, leases last 3 intervals
                logger.warning("lease renewal failed", exc_info=True)
            finally:
                # Rounds are seconds apart: no idle connection is kept open between them.
                connection.close()

    def _renew(self, held: dict[str, str]) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE tasks_task SET lease_expires_at = now() + make_interval(secs => %s) "
                "WHERE lease_owner = ANY(%s) AND lease_expires_at > now() RETURNING lease_owner",
                [settings.TASK_LEASE_SECONDS, list(held)])
            renewed = {row[0] for row in cursor.fetchall()}
        with self._lock:
            self._lost |= {owner for owner in held if owner not in renewed and owner in self._held}


keeper = LeaseKeeper()
