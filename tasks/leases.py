"""Leases on task rows: who may run a task's steps, and until when.

- ``lease_acquire``: a conditional UPDATE. It succeeds only for an active task (queued,
  running, or waiting for the model provider) whose lease is free, expired, or already
  ours. Without it a worker does nothing, so a re-delivered or duplicated ``run_task``
  message can never run a step twice.
- Every step commit renews the lease in the same statement that checks it (fencing, see
  tasks/store.py).
- The heartbeat: each worker process runs one :class:`LeaseKeeper` thread that renews, every
  ``HEARTBEAT_SECONDS``, the leases of all the slices running in the process, in one UPDATE.
  Leases are short (TASK_LEASE_SECONDS, 3 s by default) and carry the process's identity
  (``host:pid:slice``): a model call that lasts minutes keeps its lease as long as its
  process lives, and the leases of a process that died (``kill -9``) lapse within seconds.
- ``requeue_expired_leases`` (Celery beat, every TASK_REQUEUE_INTERVAL seconds, 1 s by
  default) frees lapsed leases and re-enqueues those tasks, and re-enqueues queued tasks
  whose message was lost (nobody picked them up for TASK_REQUEUE_AFTER_SECONDS; for a task
  waiting for the model provider, ``enqueued_at`` is its next try). Together:
  a killed worker's tasks take their next step on another worker about 3-4 s later.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
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
    same statement, where the leased row is ``leased`` (the runner reads what a slice needs
    besides the task there, its step log included); its value is the returned task's
    ``also`` attribute.

    Its commit does not wait for the disk (``synchronous_commit`` off for this statement's
    transaction): the slice's first step commit, which does wait, makes it durable, and if
    a database crash lost it, that step's fenced UPDATE finds no lease and writes nothing.
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
        "status = CASE WHEN status IN (%s, %s) THEN %s ELSE status END "
        "WHERE id = %s AND status IN (%s, %s, %s) "
        f"AND (lease_owner IS NULL OR lease_expires_at < now() OR lease_owner = %s) RETURNING *) "
        f"SELECT leased.*{extra} FROM leased, (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit",
        [worker_id, settings.TASK_LEASE_SECONDS, TaskStatus.QUEUED, TaskStatus.WAITING_PROVIDER, TaskStatus.RUNNING,
         ident, *ACTIVE_STATUSES, worker_id]))
    return rows[0] if rows else None


def lease_release(task_id, worker_id: str, **fields) -> bool:
    """Give the lease back (optionally setting fields) if it is still ours."""
    return bool(Task.objects.filter(pk=task_id, lease_owner=worker_id).update(
        lease_owner=None, lease_expires_at=None, **fields))


# While messages wait in the queue, a task queued for TASK_REQUEUE_AFTER_SECONDS is most
# likely behind them, not lost: it is re-sent only after this many times as long.
BACKLOG_PATIENCE = 10


def requeue_expired_leases() -> list[str]:
    """Re-enqueue active tasks whose worker vanished or whose message was lost; their ids.

    A queued task nobody took for TASK_REQUEUE_AFTER_SECONDS counts as lost only when no
    message waits in the queue (else BACKLOG_PATIENCE times as long): in a burst of
    thousands of tasks the last ones wait minutes for a free worker, and re-sending their
    messages would only add duplicates to the backlog."""
    from tasks.services import enqueue

    after = settings.TASK_REQUEUE_AFTER_SECONDS * (BACKLOG_PATIENCE if _backlog() else 1)
    stale = Q(lease_owner__isnull=False, lease_expires_at__lt=Now())
    lost = Q(lease_owner__isnull=True) & (
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=Now() - timedelta(seconds=after)))
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


def _backlog() -> int:
    from kombu.exceptions import KombuError
    from redis.exceptions import RedisError

    from agentos.celery import waiting_messages

    try:
        return waiting_messages()
    except (KombuError, RedisError, OSError):  # the broker cannot say: as if nothing waited
        logger.warning("could not read the queue's length", exc_info=True)
        return 0


HEARTBEAT_SECONDS = 1.0  # at most; a third of the lease when that is shorter


class LeaseKeeper:
    """The process's heartbeat: one daemon thread renewing the leases of the slices running
    in this process (see the module docstring).

    It only renews a lease that has not lapsed: once lapsed, a lease stays lost for its
    holder, whose next commit then raises LeaseLost (tasks/store.py). It reports nothing to
    the slices: the store's fencing is the one judge of who may write.
    """

    def __init__(self) -> None:
        self._held: dict[str, str] = {}  # worker_id -> task id
        self._lock = threading.Lock()
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

    def _loop(self) -> None:
        while True:
            time.sleep(min(HEARTBEAT_SECONDS, settings.TASK_LEASE_SECONDS / 3))
            with self._lock:
                held = list(self._held)
            if not held:
                connection.close()  # an idle process keeps no session open for its heartbeat
                continue
            try:
                with connection.cursor() as cursor:
                    cursor.execute(
                        # A renewal lost in a database crash only makes the lease lapse sooner (safe):
                        # its commit does not wait for the disk.
                        f"WITH renewed AS (UPDATE {Task._meta.db_table} "  # noqa: S608
                        "SET lease_expires_at = now() + make_interval(secs => %s) "
                        "WHERE lease_owner = ANY(%s) AND lease_expires_at > now() RETURNING 1) "
                        "SELECT count(*), set_config('synchronous_commit', 'off', true) FROM renewed",
                        [settings.TASK_LEASE_SECONDS, held])
            except Exception:  # a database hiccup: try again next round; a lease lasts 3 rounds
                logger.warning("lease renewal failed", exc_info=True)
                connection.close()


keeper = LeaseKeeper()
