"""The webhook admin: secrets are generated and shown, templates and options are checked on save."""

import pytest

from triggers.models import Webhook

pytestmark = pytest.mark.django_db
ADD_URL = "/admin/triggers/webhook/add/"


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def form_data(owner, **overrides):
    data = {"name": "github", "owner": owner.pk, "enabled": "on", "query_template": "", "options": "{}",
            "callback_url": "", "_save": "Save"}
    data.update(overrides)
    return data


def test_a_new_webhook_gets_a_secret_shown_on_its_page(staff_client, user):
    response = staff_client.post(ADD_URL, form_data(user, query_template="Review PR {{ number }}",
                                                    options='{"allow_human": false}'))
    assert response.status_code == 302
    webhook = Webhook.objects.get()
    assert webhook.secret.startswith("whsec_") and len(webhook.secret) == 70
    page = staff_client.get(f"/admin/triggers/webhook/{webhook.pk}/change/").content.decode()
    assert webhook.secret in page and f"/hooks/{webhook.pk}/" in page
    assert Webhook.objects.create(owner=user, name="two").secret != webhook.secret


@pytest.mark.parametrize(("field", "value", "message"), [
    ("query_template", "{{ payload.__class__.__mro__ }}", "unsafe attribute"),
    ("query_template", "{% for x in items %}", "Syntax error"),
    ("options", "[1, 2]", "JSON object"),
    ("options", '{"step_budget": 1}', "options.step_budget: Ensure this value is greater than or equal to 5."),
    ("options", '{"allow_human": "no"}', "options.allow_human: Must be true or false"),
])
def test_bad_templates_and_options_are_refused(staff_client, user, field, value, message):
    response = staff_client.post(ADD_URL, form_data(user, **{field: value}))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Webhook.objects.exists()


def test_rotating_the_secret(staff_client, user):
    webhook = Webhook.objects.create(owner=user, name="gh")
    old = webhook.secret
    response = staff_client.post("/admin/triggers/webhook/",
                                 {"action": "rotate_secret", "_selected_action": [webhook.pk]})
    assert response.status_code == 302
    webhook.refresh_from_db()
    assert webhook.secret != old and webhook.secret.startswith("whsec_")


def test_deliveries_are_listed_read_only(staff_client, user):
    import time

    from triggers.models import WebhookDelivery

    webhook = Webhook.objects.create(owner=user, name="ci")
    delivery = WebhookDelivery.objects.create(webhook=webhook, signed_at=int(time.time()), body_sha256="a" * 64)
    listing = staff_client.get("/admin/triggers/webhookdelivery/")
    assert listing.status_code == 200 and b"ci" in listing.content
    assert staff_client.get("/admin/triggers/webhookdelivery/add/").status_code == 403
    page = f"/admin/triggers/webhookdelivery/{delivery.pk}/change/"
    assert staff_client.post(page, {"signed_at": 1}).status_code == 403
