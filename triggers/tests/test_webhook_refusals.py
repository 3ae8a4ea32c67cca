"""Every refused delivery answers with the right status and the one error shape, and creates nothing."""

import json
import time
import uuid

import pytest

from tasks.models import Task
from triggers.tests.conftest import signed_post

pytestmark = pytest.mark.django_db


def assert_refused(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert Task.objects.count() == 0


def test_bad_signature_is_401(client, webhook):
    assert_refused(signed_post(client, webhook, {"query": "hi"}, secret="whsec_wrong"), 401, "invalid_signature")


def test_missing_signature_is_401(client, webhook):
    response = client.post(f"/hooks/{webhook.pk}/", data=b'{"query": "hi"}', content_type="application/json")
    assert_refused(response, 401, "invalid_signature")


def test_body_changed_after_signing_is_401(client, webhook):
    from triggers import signing

    header = signing.sign(secret=webhook.secret, body=b'{"query": "hi"}')
    response = client.post(f"/hooks/{webhook.pk}/", data=b'{"query": "rm -rf"}', content_type="application/json",
                           headers={signing.SIGNATURE_HEADER: header})
    assert_refused(response, 401, "invalid_signature")


@pytest.mark.parametrize("age", [301, 3600, -400])
def test_stale_or_future_timestamp_is_401(client, webhook, age):
    response = signed_post(client, webhook, {"query": "hi"}, timestamp=int(time.time()) - age)
    assert_refused(response, 401, "invalid_signature")
    assert "seconds" in response.json()["error"]["message"]


def test_disabled_hook_is_404_even_with_a_valid_signature(client, webhook):
    webhook.enabled = False
    webhook.save()
    assert_refused(signed_post(client, webhook, {"query": "hi"}), 404, "not_found")


def test_unknown_hook_is_404(client, webhook):
    body = b'{"query": "hi"}'
    from triggers import signing

    response = client.post(f"/hooks/{uuid.uuid4()}/", data=body, content_type="application/json",
                           headers={signing.SIGNATURE_HEADER: signing.sign(secret=webhook.secret, body=body)})
    assert_refused(response, 404, "not_found")


def test_hook_of_an_inactive_owner_is_404(client, webhook):
    webhook.owner.is_active = False
    webhook.owner.save()
    assert_refused(signed_post(client, webhook, {"query": "hi"}), 404, "not_found")


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"", b"[1, 2]", b'"query"', b"null"])
def test_malformed_body_is_400(client, webhook, raw):
    assert_refused(signed_post(client, webhook, None, raw=raw), 400, "malformed_json")


@pytest.mark.parametrize("payload", [{}, {"query": ""}, {"query": "   "}, {"query": 42}, {"text": "hi"}])
def test_missing_query_is_400(client, webhook, payload):
    response = signed_post(client, webhook, payload)
    assert_refused(response, 400, "missing_query")
    assert response.json()["error"]["field"] == "query"


def test_too_long_query_is_400(client, webhook, settings):
    settings.QUERY_MAX_LENGTH = 20
    assert_refused(signed_post(client, webhook, {"query": "x" * 21}), 400, "invalid")


@pytest.mark.parametrize("template", ["Summarise {{ issue.title }}", "{{ payload.__class__ }}", "{% if %}",
                                      "{{ 1 / zero }}"])
def test_template_errors_are_400(client, webhook, template):
    webhook.query_template = template
    webhook.save()
    response = signed_post(client, webhook, {"issue": {}, "zero": 0})
    assert_refused(response, 400, "template_error")
    assert response.json()["error"]["field"] == "query_template"


@pytest.mark.parametrize("template, reason", [
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursion too deep"),
    ('{{ "a" * 10**10 }}', "a value would be longer than"),
    ("{{ (text ~ text) * 100000 }}", "a value would be longer than"),
    ("{% for a in text %}{% for b in text %}{% for c in text %}{% endfor %}{% endfor %}{% endfor %}",
     "loop iterations and calls"),
])
def test_template_past_the_sandbox_limits_is_400(client, webhook, template, reason):
    # Any user may set a query template on their personal workspace's webhook: whatever it
    # does, the web process answers at once with the one error shape.
    webhook.query_template = template
    webhook.save()
    response = signed_post(client, webhook, {"text": "x" * 200})
    assert_refused(response, 400, "template_error")
    error = response.json()["error"]
    assert error["field"] == "query_template" and reason in error["message"]
    assert error["message"].startswith("prompt webhook ci: ")


def test_oversized_body_is_413(client, webhook, settings):
    settings.WEBHOOK_MAX_BYTES = 1024
    assert_refused(signed_post(client, webhook, {"query": "x" * 2000}), 413, "payload_too_large")


def test_only_post_is_allowed(client, webhook):
    assert client.get(f"/hooks/{webhook.pk}/").status_code == 405
    assert Task.objects.count() == 0


def test_error_bodies_are_json_for_a_path_without_slash(client, webhook):
    response = client.post(f"/hooks/{webhook.pk}", data=json.dumps({"query": "hi"}),
                           content_type="application/json")
    assert_refused(response, 401, "invalid_signature")
