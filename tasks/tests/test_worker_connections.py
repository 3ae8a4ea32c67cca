"""Workers keep their database connections between jobs instead of opening a PostgreSQL
session for every task slice (CELERY_DB_REUSE_MAX and the handlers in agentos/celery.py)."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from agentos.celery import app, close_old_database_connections
from tasks.models import Step
from tasks.services import task_create
from tasks.tests.waiting import assert_contiguous, wait_status

pytestmark = pytest.mark.django_db(transaction=True)


def _job(eager: bool = False):
    return SimpleNamespace(request=SimpleNamespace(is_eager=eager))


def test_celery_fixup_keeps_the_connection_around_jobs():
    """Without a pool a worker thread keeps its connection between jobs; with one
    (DB_POOL_MAX_SIZE) the connection goes back to the pool after a job and the next job
    takes a pooled one: either way no new PostgreSQL session per job."""
    fixup = DjangoWorkerFixup(app)
    connection.ensure_connection()
    raw = connection.connection
    opened = (lambda: connection.pool.get_stats().get("connections_num", 0)) if connection.pool else (lambda: 0)
    opened_before = opened()
    sessions = set()
    for _ in range(10):
        fixup.on_task_prerun(sender=_job())
        close_old_database_connections(sender=_job())
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            sessions.add(cursor.fetchone()[0])
        fixup.on_task_postrun(sender=_job())
        close_old_database_connections(sender=_job())
    if connection.pool is None:
        assert connection.connection is raw
    else:
        # The pool's sessions, reused: at most one opened for ten jobs (the pool may already
        # hold several, from earlier work of this process, and hand out any of them).
        assert opened() - opened_before <= 1, (opened() - opened_before, sessions)


def test_a_connection_that_failed_is_dropped_before_the_next_job():
    connection.ensure_connection()
    raw = connection.connection
    connection.errors_occurred = True
    raw.close()  # what a database restart leaves behind
    close_old_database_connections(sender=_job())
    assert connection.connection is None
    with connection.cursor() as cursor:  # the next job reconnects
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.slow
def test_worker_runs_many_slices_on_a_few_sessions(agents_defaults, user, make_worker):
    name = f"agentos-test-{uuid.uuid4().hex[:8]}"
    # Messages other tests left in the queue would open the worker's sessions before the
    # task starts (and hide whether the task's slices open new ones).
    app.control.purge()
    # One step per slice: every step is a Celery job of its own.
    make_worker(PGAPPNAME=name, TASK_SLICE_STEPS=1, OFFLINE_LLM_LATENCY_MS=150)
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        (created,) = cursor.fetchone()
    task = task_create(owner=user, query="compute 12 * 7, then compute 13 * 8.")
    sessions = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            # Sessions opened for the task's slices (the worker's start-up ones came before).
            cursor.execute("SELECT pid, backend_start FROM pg_stat_activity WHERE application_name = %s "
                           "AND backend_start >= %s", [name, created])
            sessions |= set(cursor.fetchall())
        task.refresh_from_db()
        if task.finished:
            break
        time.sleep(0.02)
    wait_status(task, "completed", "failed", timeout=10)
    assert task.status == "completed", task.error
    steps = assert_contiguous(task)
    assert len(steps) >= 8
    assert Step.objects.filter(task=task).count() == len(steps)
    # Slice threads and the heartbeat (lease keeper): a few sessions, not one per slice.
    assert 1 <= len(sessions) <= 4, (len(steps), sorted(str(started) for _pid, started in sessions))
