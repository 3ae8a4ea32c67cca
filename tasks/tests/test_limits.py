"""Per-model limits shared by all workers (tasks/limits.py), counted in the real Redis."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from agentos.llm import LLMRequest
from tasks import limits
from tasks.runner import run_slice
from tasks.services import task_cancel, task_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def clean_limits():
    def clear():
        client = limits._redis()
        for key in client.scan_iter(f"{limits._PREFIX}*"):
            client.delete(key)
        limits.table.invalidate()

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
def test_a_pooled_connection_goes_back_for_the_model_call_when_the_pool_runs_short(clean_limits):
    if connection.pool is None:
        pytest.skip("no connection pool configured (DB_POOL_MAX_SIZE=0)")
    pool = connection.pool
    connection.ensure_connection()
    with limits.model_slot("m4"):
        assert connection.connection is not None, "with connections to spare the thread keeps its own"

    def spare() -> int:
        stats = pool.get_stats()
        return stats["pool_max"] - stats["pool_size"] + stats["pool_available"]

    taken = []  # other threads' connections, as in a busy worker
    try:
        while spare() >= limits.POOL_SPARE_SHARE * pool.get_stats()["pool_max"]:
            taken.append(pool.getconn(timeout=10))
        with limits.model_slot("m4"):
            assert connection.connection is None, "the pool runs short: the connection went back for the call"
    finally:
        for held in taken:
            pool.putconn(held)
    assert connection.cursor().execute("SELECT 1") is not None  # and takes one again afterwards


def test_a_task_without_model_capacity_shows_it_and_waits(agents_defaults, user, settings, monkeypatch,
                                                          clean_limits):
    settings.LLM_MAX_IN_FLIGHT, settings.LLM_CAPACITY_WAIT_SECONDS = 1, 0
    monkeypatch.setattr("tasks.services.enqueue", lambda task_id, countdown=None: None)
    task = task_create(owner=user, query="compute 12 * 7")
    assert limits.take(settings.LLM_MODEL, limits.limit_for(settings.LLM_MODEL), "another-worker").wait == 0
    assert run_slice(task.id, worker_id="w1").outcome == "waiting_provider"
    task.refresh_from_db()
    assert task.status == "waiting_provider" and task.provider_error["code"] == "model_capacity"
    assert task.provider_error["message"].startswith("waiting for model capacity, next try at")
    assert not task.steps.filter(kind__in=["plan", "llm"]).exists(), "no model step was taken"
    limits.give_back(settings.LLM_MODEL, "another-worker")
    run_slice(task.id, worker_id="w1")
    assert task.steps.filter(kind="plan", status="ok").exists(), "with capacity back, the model step runs"


def _request(words: int) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": " ".join(["token"] * words)}], response_schema=None,
                      schema_name="test")


def test_tokens_per_minute_count_the_estimate_then_the_billed_usage(settings, clean_limits):
    settings.LLM_MAX_IN_FLIGHT = settings.LLM_REQUESTS_PER_MINUTE = 0
    settings.LLM_TOKENS_PER_MINUTE, settings.LLM_CAPACITY_WAIT_SECONDS = 1000, 0
    estimate = limits.estimate_tokens(_request(500))
    assert 500 <= estimate <= 510
    with limits.model_slot("t1", _request(500)) as slot:
        assert limits.tokens_in_minute("t1") == estimate, "the prompt's estimate is counted before the call"
        slot.settle(900)  # the provider billed 900 tokens (prompt and output)
    assert limits.tokens_in_minute("t1") == 900
    with pytest.raises(limits.ModelCapacity) as refused:
        with limits.model_slot("t1", _request(200)):
            pass
    assert "tokens/min" in str(refused.value) and 50 <= refused.value.retry_after <= 60
    assert limits.tokens_in_minute("t1") == 900, "a refused call counts nothing"
    with limits.model_slot("t1", _request(50)) as slot:  # 900 + ~54 fits
        slot.settle(20)
    assert limits.tokens_in_minute("t1") == 920


def test_a_call_larger_than_the_minutes_budget_runs_once_the_minute_is_empty(settings, clean_limits):
    settings.LLM_TOKENS_PER_MINUTE, settings.LLM_CAPACITY_WAIT_SECONDS = 100, 0
    with limits.model_slot("t2", _request(300)):
        pass
    with pytest.raises(limits.ModelCapacity):
        with limits.model_slot("t2", _request(1)):
            pass


def test_model_limits_override_the_defaults_per_model(settings, clean_limits):
    settings.LLM_MAX_IN_FLIGHT, settings.LLM_REQUESTS_PER_MINUTE, settings.LLM_TOKENS_PER_MINUTE = 5, 50, 5000
    settings.LLM_MODEL_LIMITS = {"big": (10, 100, 20000), "small": (1, 2, None)}
    assert limits.limit_for("big") == limits.Limit(10, 100, 20000)
    assert limits.limit_for("small") == limits.Limit(1, 2, 5000), "no tokens/min of its own: the default"
    assert limits.limit_for("other") == limits.Limit(5, 50, 5000)


def test_admin_rows_override_the_settings_on_running_processes_within_the_refresh(settings, clean_limits):
    from observability.models import ModelLimit

    settings.LLM_MAX_IN_FLIGHT, settings.LLM_REQUESTS_PER_MINUTE, settings.LLM_TOKENS_PER_MINUTE = 5, 50, 0
    settings.LLM_LIMITS_REFRESH_SECONDS = 60
    assert limits.limit_for("edited") == limits.Limit(5, 50, 0)
    # Written as another process (the web's admin) would: this process's copy is not told.
    ModelLimit.objects.bulk_create([ModelLimit(model="edited", max_in_flight=2, tokens_per_minute=9000)])
    assert limits.limit_for("edited") == limits.Limit(5, 50, 0), "the copy is younger than the refresh"
    settings.LLM_LIMITS_REFRESH_SECONDS = 0
    assert limits.limit_for("edited") == limits.Limit(2, 50, 9000), "empty fields keep the setting"
    assert limits.limit_for("not-edited") == limits.Limit(5, 50, 0)
    settings.LLM_LIMITS_REFRESH_SECONDS = 60
    ModelLimit.objects.filter(model="edited").get().delete()  # saved here: used at once
    assert limits.limit_for("edited") == limits.Limit(5, 50, 0)


def test_staff_edit_model_limits_in_the_admin(client, staff_user, clean_limits):
    from observability.models import ModelLimit

    client.force_login(staff_user)
    response = client.post("/admin/observability/modellimit/add/", {
        "model": "gpt-4o-mini", "max_in_flight": "20", "requests_per_minute": "", "tokens_per_minute": "150000",
        "note": "tier 2"})
    assert response.status_code == 302, response.content[:500]
    row = ModelLimit.objects.get(model="gpt-4o-mini")
    assert (row.max_in_flight, row.requests_per_minute, row.tokens_per_minute) == (20, None, 150000)
    assert limits.limit_for("gpt-4o-mini").tokens_per_minute == 150000, "saved here: in force at once"
    listing = client.get("/admin/observability/modellimit/")
    assert listing.status_code == 200 and b"150000 tokens/min" in listing.content
    refused = client.post("/admin/observability/modellimit/add/", {"model": "x", "max_in_flight": "-1"})
    assert refused.status_code == 200 and not ModelLimit.objects.filter(model="x").exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_running_worker_applies_a_limit_saved_in_the_admin(agents_defaults, user, make_worker, clean_limits,
                                                             settings):
    from observability.models import ModelLimit
    from tasks.tests.waiting import wait_status

    make_worker(LLM_LIMITS_REFRESH_SECONDS="0.5", LLM_CAPACITY_WAIT_SECONDS="0")
    first = task_create(owner=user, query="compute 12 * 7")
    wait_status(first, "completed", "failed", timeout=60)
    assert first.status == "completed", first.error
    ModelLimit.objects.create(model=settings.LLM_MODEL, requests_per_minute=1)
    time.sleep(1.0)  # the worker's copy of the table is at most 0.5 s old
    second = task_create(owner=user, query="compute 12 * 7")
    wait_status(second, "waiting_provider", "completed", "failed", timeout=60)
    assert second.status == "waiting_provider" and second.provider_error["code"] == "model_capacity"
    assert second.steps.filter(kind="plan", status="ok").count() == 1, "one request a minute: the plan, then a wait"
    task_cancel(task=second)
