"""Fairness between owners (tasks/fairness.py): a heavy owner's backlog does not starve a
newcomer's single task, and the heavy owner's tasks still all run."""

from __future__ import annotations

import pytest

from tasks.fairness import priority_for, task_priority
from tasks.models import Task, TaskStatus
from tasks.services import task_create
from tasks.tests.waiting import wait_status, wait_until

QUERY = "compute 12 * 7"


def test_the_priority_falls_with_the_owners_active_tasks():
    assert [priority_for(n) for n in (0, 1, 2, 3, 4, 5, 8, 9, 16, 17, 256, 257, 100_000)] == \
        [0, 0, 1, 2, 2, 3, 3, 4, 4, 5, 8, 9, 9]


@pytest.mark.django_db
def test_only_the_owners_active_tasks_count(user, other_user):
    heavy = [task_create(owner=user, query=QUERY) for _ in range(5)]
    single = task_create(owner=other_user, query=QUERY)
    assert task_priority(single.pk) == 0, "a newcomer's only task goes first"
    assert task_priority(heavy[0].pk) == 3, "five active tasks: priority 3"
    Task.objects.filter(pk__in=[t.pk for t in heavy[:4]]).update(status=TaskStatus.COMPLETED)
    assert task_priority(heavy[-1].pk) == 0, "finished tasks do not count"
    Task.objects.filter(pk=heavy[0].pk).update(status=TaskStatus.WAITING_PROVIDER)
    Task.objects.filter(pk=heavy[1].pk).update(status=TaskStatus.RUNNING)
    assert task_priority(heavy[-1].pk) == 2, "running and waiting tasks are active"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_single_task_is_not_starved_by_another_owners_backlog(agents_defaults, user, other_user):
    from agentos.testing import process_env, start_worker

    # Two worker threads and a slowish model: the heavy owner's backlog lasts many rounds.
    worker = start_worker(concurrency=2, env=process_env(OFFLINE_LLM_LATENCY_MS="100"))
    try:
        backlog = [task_create(owner=user, query=QUERY) for _ in range(40)]
        single = task_create(owner=other_user, query=QUERY)
        wait_status(single, "completed", "failed", timeout=120)
        assert single.status == "completed", single.error
        ahead = Task.objects.filter(pk__in=[t.pk for t in backlog], finished_at__lt=single.finished_at).count()
        # First come, first served would finish all 40 first; the worker's own prefetch and
        # the backlog's first few (high-priority while the owner had few tasks) may pass.
        assert ahead <= len(backlog) // 4, f"{ahead} of the other owner's {len(backlog)} tasks finished first"
        unfinished = Task.objects.filter(pk__in=[t.pk for t in backlog]).exclude(status="completed")
        wait_until(lambda: not unfinished.exists(), 180, message="every task of the backlog to complete")
    finally:
        worker.stop()


@pytest.mark.django_db(transaction=True)
def test_queue_depth_counts_the_messages_of_every_priority(user, other_user, client, settings):
    from agentos.celery import app
    from observability.tests.test_metrics import TOKEN, samples, scrape

    settings.METRICS_TOKEN = TOKEN
    app.control.purge()
    try:
        for _ in range(5):  # priorities 0, 1, 2, 2, 3: five of the broker's lists
            task_create(owner=user, query=QUERY)
        task_create(owner=other_user, query=QUERY)
        depth = samples(scrape(client)["agentos_queue_depth"], queue="celery")
        assert depth and depth[0].value == 6
    finally:
        app.control.purge()  # no worker of a later test gets these
