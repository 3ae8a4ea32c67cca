"""Leases: one conditional statement takes a task; nobody else can while it is live."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tasks.leases import lease_acquire, lease_release
from tasks.models import Task

pytestmark = pytest.mark.django_db


def test_acquire_is_one_statement_and_exclusive(user):
    task = Task.objects.create(owner=user, query="q", options={"allow_human": False})
    with CaptureQueriesContext(connection) as queries:
        taken = lease_acquire(task.pk, "w1")
    assert len(queries) == 1
    assert taken.status == "running" and taken.lease_owner == "w1" and taken.options == {"allow_human": False}
    assert lease_acquire(task.pk, "w2") is None, "a live lease is exclusive"
    assert lease_acquire(task.pk, "w1") is not None, "the holder may take it again"
    Task.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert lease_acquire(task.pk, "w2").lease_owner == "w2", "an expired lease is taken over"
    assert not lease_release(task.pk, "w1")
    assert lease_release(task.pk, "w2")


@pytest.mark.parametrize("status", ["paused", "waiting_human", "completed", "failed", "cancelled"])
def test_only_active_tasks_are_leased(user, status):
    task = Task.objects.create(owner=user, query="q", status=status)
    assert lease_acquire(task.pk, "w1") is None
    assert lease_acquire("not-a-uuid", "w1") is None


def test_acquire_reads_more_in_the_same_statement(user):
    task = Task.objects.create(owner=user, query="q")
    with CaptureQueriesContext(connection) as queries:
        taken = lease_acquire(task.pk, "w1", also="SELECT 40 + 2")
    assert len(queries) == 1
    assert taken.lease_owner == "w1" and taken.also == 42
    assert lease_acquire(task.pk, "w2", also="SELECT 1") is None
