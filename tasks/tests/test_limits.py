"""Per-model limits shared by all workers (tasks/limits.py), counted in the real Redis."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from tasks import limits
from tasks.runner import run_slice
from tasks.services import task_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def clean_limits():
    def clear():
        client = limits._redis()
        for key in client.scan_iter(f"{limits._PREFIX}*"):
            client.delete(key)

    clear()
    yield
    clear()


def test_calls_beyond_the_in_flight_limit_wait_for_a_slot_or_give_up(settings, clean_limits):
    settings.LLM_MODEL_LIMITS = {"m1": (2, 0)}
    settings.LLM_CAPACITY_WAIT_SECONDS = 0
    entered, leave = threading.Barrier(3), threading.Event()

    def hold():
        with limits.model_slot("m1"):
            entered.wait(5)
            leave.wait(5)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for holder in holders:
        holder.start()
    entered.wait(5)
    assert limits.in_flight("m1") == 2
    with pytest.raises(limits.ModelCapacity) as refused:
        with limits.model_slot("m1"):
            pass
    assert refused.value.kind == "transient" and refused.value.retry_after >= 1.0
    with limits.model_slot("other-model"):  # another model has its own (default: no) limit
        pass
    leave.set()
    for holder in holders:
        holder.join(5)
    assert limits.in_flight("m1") == 0
    settings.LLM_CAPACITY_WAIT_SECONDS = 5
    with limits.model_slot("m1"):
        assert limits.in_flight("m1") == 1


def test_a_waiting_call_gets_the_slot_freed_by_another(settings, clean_limits):
    settings.LLM_MODEL_LIMITS = {"m2": (1, 0)}
    settings.LLM_CAPACITY_WAIT_SECONDS = 10
    got = threading.Event()

    def wait_for_slot():
        with limits.model_slot("m2"):
            got.set()

    with limits.model_slot("m2"):
        waiter = threading.Thread(target=wait_for_slot)
        waiter.start()
        assert not got.wait(0.3), "a second call ran while the only slot was taken"
    assert got.wait(5), "the waiting call did not get the freed slot"
    waiter.join(5)


def test_requests_per_minute_are_counted_over_a_sliding_minute(settings, clean_limits):
    settings.LLM_MAX_IN_FLIGHT, settings.LLM_REQUESTS_PER_MINUTE = 0, 3
    settings.LLM_CAPACITY_WAIT_SECONDS = 0
    for _ in range(3):
        with limits.model_slot("m3"):
            pass
    with pytest.raises(limits.ModelCapacity) as refused:
        with limits.model_slot("m3"):
            pass
    assert 50 <= refused.value.retry_after <= 60, "the next request fits when the oldest leaves the minute"


@pytest.mark.django_db(transaction=True)
def test_a_pooled_connection_is_handed_back_while_the_model_call_waits(clean_limits):
    if connection.pool is None:
        pytest.skip("no connection pool configured (DB_POOL_MAX_SIZE=0)")
    connection.ensure_connection()
    with limits.model_slot("m4"):
        assert connection.connection is None, "the thread kept its connection during the call"
    assert connection.cursor().execute("SELECT 1") is not None  # and takes one again afterwards


def test_a_task_without_model_capacity_shows_it_and_waits(agents_defaults, user, settings, monkeypatch,
                                                          clean_limits):
    settings.LLM_MAX_IN_FLIGHT, settings.LLM_CAPACITY_WAIT_SECONDS = 1, 0
    monkeypatch.setattr("tasks.services.enqueue", lambda task_id, countdown=None: None)
    task = task_create(owner=user, query="compute 12 * 7")
    assert limits.take(settings.LLM_MODEL, limits.limit_for(settings.LLM_MODEL), "another-worker") == 0
    assert run_slice(task.id, worker_id="w1").outcome == "waiting_provider"
    task.refresh_from_db()
    assert task.status == "waiting_provider" and task.provider_error["code"] == "model_capacity"
    assert task.provider_error["message"].startswith("waiting for model capacity, next try at")
    assert not task.steps.filter(kind__in=["plan", "llm"]).exists(), "no model step was taken"
    limits.give_back(settings.LLM_MODEL, "another-worker")
    run_slice(task.id, worker_id="w1")
    assert task.steps.filter(kind="plan", status="ok").exists(), "with capacity back, the model step runs"
