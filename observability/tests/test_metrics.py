"""/metrics: protected, Prometheus text format, the task's tokens and cost, counted from a
shared store so every process answers the same."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from observability.tests.conftest import run_to_end
from tasks.models import Step
from tasks.services import task_create

TOKEN = "metrics-secret-token"
pytestmark = pytest.mark.django_db(transaction=True)


def scrape(client) -> dict:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


def samples(family, name: str | None = None, **labels) -> list:
    return [s for s in family.samples if (name is None or s.name == name)
            and all(s.labels.get(k) == v for k, v in labels.items())]


@override_settings(METRICS_TOKEN="")
def test_metrics_are_off_without_a_token(client):
    assert client.get("/metrics").status_code == 404


@override_settings(METRICS_TOKEN=TOKEN)
@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN])
def test_metrics_need_the_bearer_token(client, header):
    kwargs = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 401 and b"agentos_" not in response.content


@override_settings(METRICS_TOKEN=TOKEN)
def test_after_a_task_metrics_show_its_tokens_cost_steps_and_status(agents_defaults, priced, user, client,
                                                                    clean_metrics):
    task = task_create(owner=user, query="compute 12 * 7")
    assert run_to_end(task.id) == "finished"
    task.refresh_from_db()
    steps = list(Step.objects.filter(task=task))
    model_steps = [s for s in steps if s.model]
    families = scrape(client)

    tokens = families["agentos_model_tokens"]
    for direction, field in (("input", "tokens_in"), ("output", "tokens_out")):
        counted = sum(s.value for s in samples(tokens, "agentos_model_tokens_total", model="offline-rules",
                                               direction=direction))
        assert counted == sum(getattr(s, field) for s in model_steps) > 0
    by_version = {s.labels["prompt_version"] for s in samples(tokens, model="offline-rules")}
    assert by_version == {s.prompt_label for s in model_steps}

    cost = sum(s.value for s in samples(families["agentos_model_cost_usd"], "agentos_model_cost_usd_total"))
    assert cost == pytest.approx(float(task.cost_usd)) and task.cost_usd > Decimal(0)

    kinds = {(s.labels["kind"], s.value) for s in samples(families["agentos_steps"], "agentos_steps_total")}
    assert ("plan", 1) in kinds and ("tool", 1) in kinds
    # step 0 (the trigger) is written at creation, by the same store
    assert sum(value for _, value in kinds) == len(steps)

    latency = families["agentos_model_latency_seconds"]
    count = samples(latency, "agentos_model_latency_seconds_count", model="offline-rules")
    assert count[0].value == len(model_steps)
    assert samples(latency, "agentos_model_latency_seconds_bucket", model="offline-rules", le="+Inf")[0].value \
        == len(model_steps)

    statuses = {s.labels["status"]: s.value for s in families["agentos_tasks"].samples}
    assert statuses["completed"] == 1 and statuses["running"] == 0
    assert samples(families["agentos_queue_depth"], queue="celery")
    assert "agentos_live_clients" in families and "agentos_lease_takeovers" in families


@override_settings(METRICS_TOKEN=TOKEN)
def test_a_failed_tool_call_is_counted_by_its_error_code(clean_metrics, client):
    from observability import metrics

    step = Step(kind="tool", status="error", input={"tool": "http_get"}, output={"error_code": "url_not_allowed"},
                error="url_not_allowed: no")
    metrics.record_step(step)
    errors = scrape(client)["agentos_tool_errors"]
    assert samples(errors, "agentos_tool_errors_total", tool="http_get", code="url_not_allowed")[0].value == 1


@override_settings(METRICS_TOKEN=TOKEN)
def test_another_process_sees_the_same_counts(clean_metrics, client):
    """A step counted by one process (here a subprocess) is in every process's scrape."""
    import subprocess
    import sys

    from agentos.testing import ROOT, process_env

    code = ("import django; django.setup()\n"
            "from tasks.models import Step\nfrom observability import metrics\n"
            "metrics.record_step(Step(kind='plan', status='ok', model='m1', prompt_label='plan@1', "
            "tokens_in=7, tokens_out=3, duration_ms=120))\n")  # written at exit
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=process_env(), check=True, timeout=60)
    tokens = scrape(client)["agentos_model_tokens"]
    assert samples(tokens, "agentos_model_tokens_total", model="m1", direction="input")[0].value == 7
