"""Outbound callbacks: signed events, retries with backoff, every attempt recorded, SSRF rules."""

import json
import time

import pytest
from django.db import transaction

from tasks.models import Task
from tools.tests.http_server import LocalServer
from triggers import signing
from triggers.callbacks import callback_attempt, retry_delay
from triggers.models import CallbackAttempt, Webhook
from triggers.services import callback_secret_for_owner, callback_signer, task_status_changed


def make_task(owner, *, status="completed", callback_url=None, **fields):
    return Task.objects.create(owner=owner, query="What changed?", status=status, callback_url=callback_url,
                               result="All good." if status == "completed" else "", **fields)


def wait_until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_callback_is_signed_retried_after_a_failure_and_every_attempt_recorded(callback_worker, receiver, user):
    receiver.statuses = [500]  # fail once, then the default 200
    task = make_task(user, callback_url=receiver.url)
    with transaction.atomic():
        delivery_id = task_status_changed(task_id=task.pk, status="completed")
        assert delivery_id
    requests = receiver.wait_for(2)
    assert [request["status"] for request in requests] == [500, 200], callback_worker.log()[-3000:]

    secret = callback_secret_for_owner(owner=user)
    for number, request in enumerate(requests, start=1):
        headers = {key.lower(): value for key, value in request["headers"].items()}
        # The receiver's side of the contract: verify with the shared secret.
        signing.verify(secret=secret, body=request["body"], header=headers["x-agentos-signature"])
        assert headers["x-agentos-event"] == "task.completed"
        assert headers["x-agentos-delivery"] == delivery_id
        assert headers["x-agentos-attempt"] == str(number)
        event = json.loads(request["body"])
        assert event["event"] == "task.completed" and event["id"] == delivery_id
        assert event["task"]["task_id"] == str(task.pk)
        assert event["task"]["status"] == "completed" and event["task"]["result"] == "All good."
    with pytest.raises(signing.SignatureError):
        signing.verify(secret=secret + "x", body=requests[1]["body"],
                       header=requests[1]["headers"]["X-AgentOS-Signature"])

    assert wait_until(lambda: CallbackAttempt.objects.filter(task=task).count() == 2)
    attempts = list(CallbackAttempt.objects.filter(task=task).order_by("attempt"))
    assert [(a.attempt, a.status_code, a.ok) for a in attempts] == [(1, 500, False), (2, 200, True)]
    assert attempts[0].error.startswith("HTTP 500") and attempts[1].error == ""
    assert all(a.url == receiver.url and a.event == "task.completed" and str(a.delivery_id) == delivery_id
               for a in attempts)
    # Exponential backoff: the second attempt came after the first retry delay.
    assert (attempts[1].created_at - attempts[0].created_at).total_seconds() >= 0.25


@pytest.mark.slow
def test_a_permanent_refusal_is_not_retried(callback_worker, receiver, user):
    # 410 Gone: the receiver will never take this event, so there is no second attempt.
    receiver.statuses = [410]
    task = make_task(user, status="failed", callback_url=receiver.url)
    task_status_changed(task_id=task.pk, status="failed")
    assert wait_until(lambda: CallbackAttempt.objects.filter(task=task).exists())
    time.sleep(1.5)  # longer than a retry would take
    attempts = list(CallbackAttempt.objects.filter(task=task))
    assert [(a.attempt, a.status_code, a.ok, a.event) for a in attempts] == [(1, 410, False, "task.failed")]
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_retry_gives_up_after_max_attempts_and_backs_off_exponentially(receiver, user, settings):
    settings.HTTP_ALLOW_PRIVATE_ADDRESSES = True
    settings.CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.CALLBACK_RETRY_BASE_SECONDS = 10
    settings.CALLBACK_RETRY_MAX_SECONDS = 60
    assert [retry_delay(n) for n in range(1, 6)] == [10, 20, 40, 60, 60]
    receiver.statuses = [503, 503, 503]
    task = make_task(user, callback_url=receiver.url)
    outcomes = [callback_attempt(task_id=str(task.pk), delivery_id="6d9a1f3e-8a43-4bb0-9a57-0f1d2c3b4a5e",
                                 url=receiver.url, event="task.completed", body="{}", attempt=n, max_attempts=3)
                for n in (1, 2, 3)]
    assert [(o.status_code, o.retry) for o in outcomes] == [(503, True), (503, True), (503, False)]
    assert CallbackAttempt.objects.filter(task=task).count() == 3


@pytest.mark.timeout(30)
@pytest.mark.django_db
def test_a_receiver_that_trickles_its_headers_times_out_and_is_retried(user, settings):
    settings.HTTP_ALLOW_PRIVATE_ADDRESSES = True
    settings.CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.CALLBACK_TIMEOUT = 0.5
    with LocalServer() as server:
        url = server.url + "/trickle-headers"
        task = make_task(user, callback_url=url)
        started = time.monotonic()
        outcome = callback_attempt(task_id=str(task.pk), delivery_id="6d9a1f3e-8a43-4bb0-9a57-0f1d2c3b4a5e",
                                   url=url, event="task.completed", body="{}", attempt=1, max_attempts=3)
        assert time.monotonic() - started < 1.5
    assert (outcome.ok, outcome.retry, outcome.status_code) == (False, True, None)
    assert outcome.error == "ReadTimeout: the response took longer than the time limit"
    attempt = CallbackAttempt.objects.get(task=task)
    assert (attempt.ok, attempt.error) == (False, outcome.error) and attempt.duration_ms < 1500


@pytest.mark.django_db
def test_loopback_is_refused_unless_the_settings_allow_it(receiver, user, settings):
    settings.HTTP_ALLOW_PRIVATE_ADDRESSES = False
    settings.CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    task = make_task(user, callback_url=receiver.url)
    outcome = callback_attempt(task_id=str(task.pk), delivery_id="6d9a1f3e-8a43-4bb0-9a57-0f1d2c3b4a5e",
                               url=receiver.url, event="task.completed", body="{}", attempt=1, max_attempts=6)
    assert (outcome.ok, outcome.retry, outcome.status_code) == (False, False, None)
    assert "non-public address" in outcome.error
    attempt = CallbackAttempt.objects.get(task=task)
    assert attempt.error.startswith("refused:") and not attempt.ok
    assert receiver.requests == []


@pytest.mark.django_db
def test_hosts_off_the_allowlist_are_refused(receiver, user, settings):
    settings.HTTP_ALLOW_PRIVATE_ADDRESSES = True
    settings.CALLBACK_ALLOWED_HOSTS = ["hooks.example.com"]
    task = make_task(user, callback_url=receiver.url)
    outcome = callback_attempt(task_id=str(task.pk), delivery_id="6d9a1f3e-8a43-4bb0-9a57-0f1d2c3b4a5e",
                               url=receiver.url, event="task.completed", body="{}", attempt=1, max_attempts=6)
    assert "allowlist" in outcome.error and not outcome.retry
    assert receiver.requests == []


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "expected"), [("completed", "task.completed"), ("failed", "task.failed"),
                                                  ("waiting_human", "task.waiting_human"), ("running", None),
                                                  ("paused", None), ("cancelled", None), ("queued", None)])
def test_which_statuses_notify(user, status, expected, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr("triggers.jobs.deliver_callback.delay", lambda *args: sent.append(args))
    task = make_task(user, status=status, callback_url="https://cb.example.com/")
    with django_capture_on_commit_callbacks(execute=True):
        delivery_id = task_status_changed(task_id=task.pk, status=status)
    if expected is None:
        assert delivery_id is None and sent == []
    else:
        assert len(sent) == 1
        task_id, sent_delivery, url, event, body = sent[0]
        assert (task_id, sent_delivery, url, event) == (str(task.pk), delivery_id, "https://cb.example.com/", expected)
        assert json.loads(body)["task"]["status"] == status


@pytest.mark.django_db
def test_no_callback_url_means_no_job(user, django_capture_on_commit_callbacks):
    task = make_task(user)
    with django_capture_on_commit_callbacks() as callbacks:
        assert task_status_changed(task_id=task.pk, status="completed") is None
    assert callbacks == []


@pytest.mark.django_db
def test_which_secret_signs(user, other_user, settings):
    hook = Webhook.objects.create(owner=user, name="gh")
    from_hook = make_task(user, trigger="webhook", trigger_details={"webhook_id": str(hook.pk)})
    from_api = make_task(user)
    from_other = make_task(other_user)

    def secret_of(task):
        return callback_signer(task=task)[0]

    assert secret_of(from_hook) == hook.secret
    assert callback_signer(task=from_hook)[1] == hook.pk  # its callbacks are recorded as the hook's deliveries
    assert callback_signer(task=from_api)[1] is None
    assert secret_of(from_api) == callback_secret_for_owner(owner=user)
    # Each owner has their own key, so no user can sign events another user's receiver trusts.
    assert secret_of(from_other) != secret_of(from_api)
    settings.CALLBACK_SIGNING_SECRET = "operator-wide"
    assert secret_of(from_api) == "operator-wide"
    assert secret_of(from_hook) == hook.secret


@pytest.mark.django_db
def test_a_captured_callback_posted_to_the_hook_that_signed_it_starts_nothing(client, receiver, user, settings):
    # A task started by a webhook has its callbacks signed with that webhook's secret, in the
    # inbound scheme: a copy of the event is a correctly signed request to the hook.
    settings.HTTP_ALLOW_PRIVATE_ADDRESSES = True
    settings.CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    hook = Webhook.objects.create(owner=user, name="ci", options={"allow_human": False})
    task = make_task(user, trigger="webhook", trigger_details={"webhook_id": str(hook.pk)}, callback_url=receiver.url)
    body = json.dumps({"query": "Summarise the release notes", "task": {"task_id": str(task.pk)}})
    outcome = callback_attempt(task_id=str(task.pk), delivery_id="6d9a1f3e-8a43-4bb0-9a57-0f1d2c3b4a5e",
                               url=receiver.url, event="task.completed", body=body, attempt=1, max_attempts=3)
    assert outcome.ok
    [sent] = receiver.requests
    header = sent["headers"]["X-AgentOS-Signature"]
    signing.verify(secret=hook.secret, body=sent["body"], header=header)  # what the receiver checks

    tasks_before = Task.objects.count()
    replay = client.post(f"/hooks/{hook.pk}/", data=sent["body"], content_type="application/json",
                         headers={signing.SIGNATURE_HEADER: header})
    assert replay.status_code == 409, replay.content
    assert replay.json()["error"]["code"] == "duplicate_delivery"
    assert Task.objects.count() == tasks_before

    # The hook still takes a request its sender signs now.
    fresh = client.post(f"/hooks/{hook.pk}/", data=body.encode(), content_type="application/json",
                        headers={signing.SIGNATURE_HEADER: signing.sign(secret=hook.secret, body=body.encode(),
                                                                        timestamp=int(time.time()) + 1)})
    assert fresh.status_code == 202, fresh.content
    assert Task.objects.count() == tasks_before + 1
