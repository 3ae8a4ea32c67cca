"""A signed webhook starts a real run on a real worker, and the result is called back, signed."""

import io
import json
import time

import pytest
from django.core.management import call_command

from tasks.models import Step, Task
from triggers import signing
from triggers.models import CallbackAttempt, Webhook
from triggers.tests.conftest import signed_post


def wait_for_status(task_id, statuses, timeout=90.0) -> Task:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = Task.objects.get(pk=task_id)
        if task.status in statuses:
            return task
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} is still {Task.objects.get(pk=task_id).status}")


@pytest.mark.slow
def test_signed_webhook_creates_and_runs_a_task_then_calls_back(callback_worker, defaults, receiver, client, user):
    webhook = Webhook.objects.create(owner=user, name="release-bot", options={"allow_human": False},
                                     query_template="Calculate {{ a }} * {{ b }} for release {{ payload.release }}",
                                     callback_url=receiver.url)
    before = Task.objects.count()
    response = signed_post(client, webhook, {"a": 6, "b": 7, "release": "v2"})
    assert response.status_code == 202, response.content
    task_id = response.json()["task_id"]
    assert Task.objects.count() == before + 1

    task = wait_for_status(task_id, {"completed", "failed"})
    assert task.status == "completed", (task.error, callback_worker.log()[-3000:])
    assert task.trigger == "webhook" and task.query == "Calculate 6 * 7 for release v2"
    assert task.result and Step.objects.filter(task=task).count() >= 3

    [request] = receiver.wait_for(1)
    headers = {key.lower(): value for key, value in request["headers"].items()}
    # A webhook's callbacks are signed with that webhook's secret: the sender can verify them.
    signing.verify(secret=webhook.secret, body=request["body"], header=headers["x-agentos-signature"])
    event = json.loads(request["body"])
    assert event["event"] == "task.completed"
    assert event["task"]["task_id"] == task_id and event["task"]["status"] == "completed"
    assert event["task"]["trigger"] == "webhook" and event["task"]["result"] == task.result
    deadline = time.monotonic() + 10
    while not CallbackAttempt.objects.filter(task=task, ok=True).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(CallbackAttempt.objects.filter(task=task).values_list("attempt", "status_code", "ok")) == [
        (1, 200, True)]


@pytest.mark.django_db
def test_the_cli_records_trigger_cli(user):
    out = io.StringIO()
    call_command("agent", "run", "What is 2 + 2?", "--user", user.username, "--no-wait", stdout=out)
    task = Task.objects.get()
    assert (task.trigger, task.owner, task.query) == ("cli", user, "What is 2 + 2?")
    assert f"task {task.pk} queued" in out.getvalue()


@pytest.mark.slow
def test_every_task_records_its_trigger_as_its_first_step(worker, defaults, client, webhook):
    response = signed_post(client, webhook, {"query": "What is 2 + 2?"})
    assert response.status_code == 202
    task = wait_for_status(response.json()["task_id"], {"completed", "failed"})
    first = Step.objects.get(task=task, index=0)
    assert first.kind == "trigger"
    recorded = json.dumps({"input": first.input, "output": first.output})
    assert "webhook" in recorded and str(webhook.pk) in recorded


@pytest.mark.slow
def test_a_failed_run_is_called_back_as_task_failed(callback_worker, defaults, receiver, client, user):
    from prompts.models import PromptVersion

    # Without an active plan prompt the run cannot even plan, and fails.
    PromptVersion.objects.filter(template__slug="plan").update(is_active=False)
    webhook = Webhook.objects.create(owner=user, name="broken", options={"allow_human": False},
                                     callback_url=receiver.url)
    response = signed_post(client, webhook, {"query": "Compare the three largest cities of Spain by population"})
    assert response.status_code == 202, response.content
    task = wait_for_status(response.json()["task_id"], {"completed", "failed"})
    assert task.status == "failed", task.result
    [request] = receiver.wait_for(1)
    signing.verify(secret=webhook.secret, body=request["body"], header=request["headers"]["X-AgentOS-Signature"])
    event = json.loads(request["body"])
    assert event["event"] == "task.failed" and event["task"]["error"] == task.error
