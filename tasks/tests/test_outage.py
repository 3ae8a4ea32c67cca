"""Waiting for our own model limits is not a provider outage (tasks/outage.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agentos.llm import LLMServerError
from tasks import limits
from tasks.engine.state import PROVIDER_WAIT, StepRecord
from tasks.models import Step
from tasks.outage import _when, fault_step
from tasks.runner import run_slice
from tasks.services import task_create


def _wait(index: int, code: str, **data) -> StepRecord:
    return StepRecord(index=index, kind=PROVIDER_WAIT, status="error", input=data,
                      output={"error": {"code": code, "kind": "transient"}})


def _server_error() -> LLMServerError:
    return LLMServerError("HTTP 503: down", status=503)


def test_capacity_waits_inside_an_outage_are_left_out_of_its_length(settings):
    settings.LLM_OUTAGE_MAX_SECONDS = 50
    since = _when(timezone.now() - timedelta(seconds=100))
    log = [StepRecord(index=0, kind="trigger"),
           _wait(1, "server_error", since=since, attempt=1),
           _wait(2, "model_capacity", since=since, attempt=1, capacity_s=45.0),
           _wait(3, "model_capacity", since=since, attempt=2, capacity_s=35.0)]
    step = fault_step(steps=log, draft=Step(kind="plan"), error=_server_error())
    assert step.kind == "provider_wait", "100 s since the outage began, 80 of them waiting for capacity: 20 s"
    assert step.input["attempt"] == 2 and step.input["since"] == since and step.input["excluded_s"] == 80.0
    # Carried on: the next failure still leaves those 80 s out, and counts what came after.
    log.append(StepRecord(index=4, kind=PROVIDER_WAIT, status="error", input=step.input, output=step.output))
    log.append(_wait(5, "model_capacity", since=since, attempt=1, capacity_s=10.0))
    assert fault_step(steps=log, draft=Step(kind="plan"), error=_server_error()).input["excluded_s"] == 90.0
    failed = fault_step(steps=log[:3], draft=Step(kind="plan"), error=_server_error())
    assert failed.kind == "error" and "LLM_OUTAGE_MAX_SECONDS" in failed.error, "only 45 s left out: 55 s > 50 s"


def test_a_capacity_wait_never_fails_the_task_however_long(settings):
    settings.LLM_OUTAGE_MAX_SECONDS = 0
    long_ago = _when(timezone.now() - timedelta(hours=3))
    log = [StepRecord(index=0, kind="trigger"),
           *(_wait(i, "model_capacity", since=long_ago, attempt=i, capacity_s=300.0) for i in range(1, 40))]
    step = fault_step(steps=log, draft=Step(kind="plan", duration_ms=2500),
                      error=limits.ModelCapacity("waiting for model capacity", retry_after=3.0))
    assert step.kind == "provider_wait" and step.input["attempt"] == 40 and step.input["since"] == long_ago
    assert step.input["delay_s"] >= 3.0 and step.input["capacity_s"] == pytest.approx(step.input["delay_s"] + 2.5)


@pytest.mark.django_db
def test_a_task_waiting_for_capacity_keeps_waiting_past_the_outage_ceiling(agents_defaults, user, settings,
                                                                         monkeypatch):
    client = limits._redis()
    for key in client.scan_iter(f"{limits._PREFIX}*"):
        client.delete(key)
    settings.LLM_OUTAGE_MAX_SECONDS, settings.LLM_MAX_IN_FLIGHT, settings.LLM_CAPACITY_WAIT_SECONDS = 0, 1, 0
    monkeypatch.setattr("tasks.services.enqueue", lambda task_id, countdown=None: None)
    task = task_create(owner=user, query="compute 12 * 7")
    assert limits.take(settings.LLM_MODEL, limits.limit_for(settings.LLM_MODEL), "another-worker").wait == 0
    try:
        for _ in range(3):
            assert run_slice(task.id, worker_id="w1").outcome == "waiting_provider"
            task.refresh_from_db()
            assert task.status == "waiting_provider" and task.provider_error["code"] == "model_capacity"
        waits = list(task.steps.filter(kind="provider_wait").order_by("index").values_list("input", flat=True))
        assert [w["attempt"] for w in waits] == [1, 2, 3]
    finally:
        limits.give_back(settings.LLM_MODEL, "another-worker")
    assert run_slice(task.id, worker_id="w1").outcome in ("finished", "continue")
    task.refresh_from_db()
    assert task.status in ("running", "queued", "completed") and task.provider_error is None
