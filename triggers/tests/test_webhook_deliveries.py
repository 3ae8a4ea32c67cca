"""Accepted webhook deliveries: the task they create, templates, replays and the rate limit."""

import time

import pytest

from tasks.models import Task
from triggers import signing
from triggers.tests.conftest import signed_post

pytestmark = pytest.mark.django_db


def test_signed_delivery_creates_a_webhook_task_and_answers_202(client, webhook, user):
    webhook.callback_url = "https://hooks.example.com/agentos"
    webhook.save()
    response = signed_post(client, webhook, {"query": "Summarise the release notes"},
                           headers={"X-AgentOS-Delivery": "d-123", "User-Agent": "ci-bot/2", "Cookie": "s=1"})
    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {"task_id", "status", "url"}
    assert body["status"] == "queued"
    assert body["url"] == f"http://testserver/api/v1/tasks/{body['task_id']}/"
    task = Task.objects.get(pk=body["task_id"])
    assert (task.owner, task.query, task.trigger) == (user, "Summarise the release notes", "webhook")
    assert task.options == {"allow_human": False}
    assert task.callback_url == "https://hooks.example.com/agentos"
    details = task.trigger_details
    assert details["webhook_id"] == str(webhook.pk)
    assert details["webhook_name"] == "ci"
    assert details["delivery_id"] == "d-123"
    assert details["payload"] == {"query": "Summarise the release notes"}
    assert details["headers"]["user-agent"] == "ci-bot/2"
    assert "cookie" not in details["headers"] and signing.SIGNATURE_HEADER.lower() not in details["headers"]
    assert abs(details["signed_at"] - time.time()) < 10


def test_query_template_is_filled_from_the_payload(client, webhook):
    webhook.query_template = ("Triage issue #{{ issue.number }}: {{ issue.title }}"
                              "{% for label in issue.labels %} [{{ label }}]{% endfor %} from {{ payload.sender }}")
    webhook.save()
    payload = {"issue": {"number": 7, "title": "Crash on start", "labels": ["bug", "p1"]}, "sender": "octo"}
    response = signed_post(client, webhook, payload)
    assert response.status_code == 202, response.content
    task = Task.objects.get(pk=response.json()["task_id"])
    assert task.query == "Triage issue #7: Crash on start [bug] [p1] from octo"


def test_a_replayed_delivery_returns_the_first_task_instead_of_a_second_one(client, webhook):
    from django.test import Client

    body = b'{"query": "once"}'
    header = signing.sign(secret=webhook.secret, body=body)
    first = client.post(f"/hooks/{webhook.pk}/", data=body, content_type="application/json",
                        headers={signing.SIGNATURE_HEADER: header})
    again = Client().post(f"/hooks/{webhook.pk}", data=body, content_type="application/json",
                          headers={signing.SIGNATURE_HEADER: header})
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["task_id"] == first.json()["task_id"] and again.json()["duplicate"] is True
    assert Task.objects.count() == 1


def test_invalid_webhook_options_are_a_400_not_a_500(client, webhook):
    webhook.options = {"no_such_option": 1}
    webhook.save()
    response = signed_post(client, webhook, {"query": "hi"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "options.no_such_option"
    assert Task.objects.count() == 0


def test_callback_url_in_the_options_is_used_as_the_callback(client, webhook):
    webhook.options = {"allow_human": False, "callback_url": "https://cb.example.com/x"}
    webhook.save()
    response = signed_post(client, webhook, {"query": "hi"})
    assert response.status_code == 202, response.content
    task = Task.objects.get(pk=response.json()["task_id"])
    assert task.callback_url == "https://cb.example.com/x" and task.options == {"allow_human": False}


def test_deliveries_beyond_the_rate_limit_get_429_and_create_nothing(client, webhook, other_user, settings):
    from triggers.models import Webhook

    settings.WEBHOOK_RATE_LIMIT = 3
    if time.time() % 60 > 50:  # the counter is per clock minute: do not straddle two
        time.sleep(61 - time.time() % 60)
    for number in range(3):
        assert signed_post(client, webhook, {"query": f"q{number}"}).status_code == 202
    response = signed_post(client, webhook, {"query": "one too many"})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert Task.objects.count() == 3
    # The limit is per webhook: another hook is unaffected.
    other = Webhook.objects.create(owner=other_user, name="other")
    assert signed_post(client, other, {"query": "fine"}).status_code == 202
    # Invalid signatures are not counted against a hook (nobody can lock a sender out).
    for _ in range(3):
        assert signed_post(client, other, {"query": "x"}, secret="bad").status_code == 401
    assert signed_post(client, other, {"query": "y"}).status_code == 202
    assert signed_post(client, other, {"query": "z"}).status_code == 202


def in_one_rate_window(send):
    """``send(attempt)``, again with fresh requests until one attempt starts and ends in the same
    clock minute (the rate limit counts per clock minute); no waiting."""
    for attempt in range(3):
        window = int(time.time() // 60)
        result = send(attempt)
        if int(time.time() // 60) == window:
            return result
    raise AssertionError("the clock minute changed during every attempt")


def test_replays_of_one_signed_request_do_not_use_up_the_rate_limit(client, webhook, settings):
    settings.WEBHOOK_RATE_LIMIT = 2

    def send(attempt):
        timestamp = int(time.time())
        replays = [signed_post(client, webhook, {"query": f"once ({attempt})"}, timestamp=timestamp)
                   for _ in range(3)]
        fresh = [signed_post(client, webhook, {"query": f"new {number} ({attempt})"}) for number in range(2)]
        return replays, fresh

    replays, (second, third) = in_one_rate_window(send)
    assert [response.status_code for response in replays] == [202, 200, 200], replays[-1].content
    assert {response.json()["task_id"] for response in replays} == {replays[0].json()["task_id"]}
    assert replays[1].json()["duplicate"] is True and replays[2].json()["duplicate"] is True
    # The replays left the budget alone: one more new delivery fits, the next does not.
    assert second.status_code == 202, second.content
    assert third.status_code == 429 and third.json()["error"]["code"] == "rate_limited"


def test_new_deliveries_over_the_limit_get_429_but_a_replay_still_gets_its_task(client, webhook, settings):
    settings.WEBHOOK_RATE_LIMIT = 2

    def send(attempt):
        timestamp = int(time.time())
        new = [signed_post(client, webhook, {"query": f"q{number} ({attempt})"}, timestamp=timestamp)
               for number in range(3)]
        replay = signed_post(client, webhook, {"query": f"q0 ({attempt})"}, timestamp=timestamp)
        return new, replay

    (first, second, third), replay = in_one_rate_window(send)
    assert (first.status_code, second.status_code, third.status_code) == (202, 202, 429), third.content
    assert third.json()["error"]["code"] == "rate_limited"
    assert replay.status_code == 200, replay.content
    assert replay.json()["task_id"] == first.json()["task_id"] and replay.json()["duplicate"] is True
    assert not Task.objects.filter(query__startswith="q2").exists()
