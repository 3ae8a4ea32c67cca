"""What a slice starts from: the step log read in the lease's own statement is the whole
committed log, even when a service commits a step while that statement waits for the row."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from tasks.leases import lease_acquire
from tasks.lookups import load_state, lookups_sql, parse_lookups
from tasks.models import Step, StepKind, Task
from tasks.services import task_create
from tasks.store import step_append
from tasks.tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def slice_state(task_id):
    task = lease_acquire(task_id, "w1", also=lookups_sql())
    lookups = parse_lookups(task.also)
    return task, load_state(task, lookups.agents, [], steps=lookups.steps)


def test_the_slice_starts_from_the_whole_log(agents_defaults, user):
    created = task_create(owner=user, query="compute 12 * 7")
    task, state = slice_state(created.id)
    assert [r.kind for r in state.steps] == ["trigger"] and state.next_index == task.step_count == 1


def test_a_step_committed_while_the_lease_waited_is_in_the_slice(agents_defaults, user):
    created = task_create(owner=user, query="compute 12 * 7")
    written, commit = threading.Event(), threading.Event()
    seen: dict = {}

    def service():  # as tasks/services.py does: the row locked, a control step appended, then commit
        try:
            with transaction.atomic():
                row = Task.objects.select_for_update().get(pk=created.pk)
                step_append(task=row, step=Step(kind=StepKind.RESUME))
                written.set()
                commit.wait(30)
        finally:
            connections.close_all()

    def worker():
        try:
            task, state = slice_state(created.id)
            seen.update(count=task.step_count, kinds=[r.kind for r in state.steps])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=service)]
    threads[0].start()
    assert written.wait(30)
    threads.append(threading.Thread(target=worker))
    threads[1].start()

    def lease_waits_for_the_row() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND query LIKE %s", ["WITH leased AS (UPDATE%"])
            return cursor.fetchone()[0] == 1

    wait_until(lease_waits_for_the_row, timeout=30, interval=0.01, message="the lease waiting for the row lock")
    commit.set()
    for thread in threads:
        thread.join(30)
    assert seen == {"count": 2, "kinds": ["trigger", "resume"]}
