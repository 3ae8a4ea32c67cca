"""One captured signed request can start one task: however its header is re-worded, when
copies arrive at once, after the cache (Redis) is flushed. Deliveries are pruned once their
timestamp is no longer accepted."""

from __future__ import annotations

import threading
import time

import pytest
from django.test import Client

from tasks.models import Task
from triggers import signing
from triggers.models import WebhookDelivery

BODY = b'{"query": "Summarise the release notes"}'


def post(webhook, header: str, body: bytes = BODY, client: Client | None = None):
    return (client or Client()).post(f"/hooks/{webhook.pk}/", data=body, content_type="application/json",
                                     headers={signing.SIGNATURE_HEADER: header})


def captured(webhook) -> tuple[int, str, str]:
    timestamp = int(time.time())
    signature = signing.compute_signature(secret=webhook.secret, timestamp=timestamp, body=BODY)
    return timestamp, signature, f"t={timestamp},v1={signature}"


def rewordings(timestamp: int, signature: str, header: str) -> dict[str, str]:
    """The re-wordings an attacker holding one captured request would try (issue #18)."""
    zeros = "0" * 64
    return {
        "same header": header,
        "v1=deadbeef appended": header + ",v1=deadbeef",
        "spaces": f"t={timestamp}, v1={signature}",
        "space before": f" t={timestamp},v1={signature}",
        "upper-case hex": f"t={timestamp},v1={signature.upper()}",
        "fields reordered": f"v1={signature},t={timestamp}",
        "t=1 in front": f"t=1,{header}",
        "second t at the end": f"{header},t={timestamp}",
        "unknown key": f"{header},x=1",
        "v0 scheme": f"{header},v0={zeros}",
        "a wrong v1 of the right shape added": f"{header},v1={zeros}",
        "the signature twice": f"{header},v1={signature}",
        "leading zero in t": f"t=0{timestamp},v1={signature}",
        "plus sign in t": f"t=+{timestamp},v1={signature}",
        "trailing comma": header + ",",
        "empty item": f"t={timestamp},,v1={signature}",
        "tab": f"t={timestamp},\tv1={signature}",
    }


@pytest.mark.django_db(transaction=True)
def test_every_rewording_of_a_captured_request_is_refused_or_the_same_delivery(webhook):
    timestamp, signature, header = captured(webhook)
    first = post(webhook, header)
    assert first.status_code == 202, first.content
    task_id = first.json()["task_id"]
    answers = {}
    for name, variant in rewordings(timestamp, signature, header).items():
        response = post(webhook, variant)
        body = response.json()
        if response.status_code == 200:
            assert body["task_id"] == task_id and body["duplicate"] is True, name
        else:
            assert response.status_code == 401 and body["error"]["code"] == "invalid_signature", (name, body)
        answers[name] = response.status_code
    assert Task.objects.count() == 1
    assert WebhookDelivery.objects.count() == 1
    # Only these verify, and only to the delivery already seen.
    assert {name for name, status in answers.items() if status == 200} == {
        "same header", "fields reordered", "a wrong v1 of the right shape added", "the signature twice"}


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_is_still_a_duplicate_after_the_cache_is_flushed(webhook):
    from django.core.cache import cache

    _timestamp, _signature, header = captured(webhook)
    first = post(webhook, header)
    assert first.status_code == 202
    cache._cache.get_client(write=True).flushall()  # what a Redis restart without persistence leaves
    again = post(webhook, header)
    assert again.status_code == 200, again.content
    assert again.json() == {**first.json(), "status": again.json()["status"], "duplicate": True}
    assert Task.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_copies_arriving_at_once_start_one_task(webhook):
    _timestamp, _signature, header = captured(webhook)
    barrier = threading.Barrier(8)
    statuses: list[tuple[int, str]] = []

    def send():
        from django.db import connection

        client = Client()
        barrier.wait()
        try:
            response = post(webhook, header, client=client)
            statuses.append((response.status_code, response.json().get("task_id")))
        finally:
            connection.close()  # this thread's own

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(status for status, _ in statuses) == [200] * 7 + [202]
    assert len({task_id for _, task_id in statuses}) == 1
    assert Task.objects.count() == 1


@pytest.mark.django_db
def test_the_same_body_signed_at_another_time_is_another_delivery(webhook):
    now = int(time.time())
    for timestamp in (now, now - 1):
        header = signing.sign(secret=webhook.secret, body=BODY, timestamp=timestamp)
        assert post(webhook, header).status_code == 202
    assert Task.objects.count() == 2


@pytest.mark.django_db
def test_pruning_forgets_only_deliveries_whose_timestamp_is_refused_by_now(webhook, settings):
    from triggers.jobs import prune_webhook_deliveries

    now = int(time.time())
    window = settings.WEBHOOK_SIGNATURE_TOLERANCE + 60
    for age in (0, 100, window - 5, window + 5, 86400):
        WebhookDelivery.objects.create(webhook=webhook, signed_at=now - age, body_sha256=f"{age:064d}")
    assert prune_webhook_deliveries.apply().get() == 2
    assert sorted(now - row.signed_at for row in WebhookDelivery.objects.all()) == [0, 100, window - 5]


def test_pruning_is_a_beat_entry_of_a_registered_job(settings):
    from agentos.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["triggers-prune-webhook-deliveries"]
    assert entry["task"] == "triggers.jobs.prune_webhook_deliveries"
    assert entry["task"] in app.tasks
    assert entry["schedule"] <= settings.WEBHOOK_SIGNATURE_TOLERANCE


DEEP = b'{"query": "q", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}"


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field"), [
    (DEEP, None),
    (b'{"query": "q", "n": 1e400}', None),
    (b'{"query": "q", "n": NaN}', None),
    (b'{"query": "q", "n": -Infinity}', None),
    (b'{"query": "q\\u0000"}', "query"),
    (b'{"query": "q", "s": "\\ud800"}', "s"),
    (b'{"query\\u0000": "q"}', None),
])
def test_bodies_the_api_would_refuse_are_400_in_the_error_shape(client, webhook, body, field):
    header = signing.sign(secret=webhook.secret, body=body)
    response = post(webhook, header, body=body, client=client)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "malformed_json" and error["message"]
    if field:
        assert error["field"] == field
    assert Task.objects.count() == 0 and WebhookDelivery.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("size", [300_000, 3_000_000])
def test_bodies_over_the_limit_are_413_in_the_error_shape_at_any_size(client, webhook, size):
    body = b'{"query": "' + b"x" * size + b'"}'
    header = signing.sign(secret=webhook.secret, body=body)
    response = post(webhook, header, body=body, client=client)
    assert response.status_code == 413, response.content[:200]
    assert response.json()["error"]["code"] == "payload_too_large"
    assert Task.objects.count() == 0
