"""Staff changes to webhooks and schedules in the admin write one audit row each, in the
object's workspace, like a workspace admin's changes (never the secret)."""

import json

import pytest

from triggers.models import ScheduledQuery, Webhook
from workspaces.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def rows(target_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(target_type=target_type).order_by("id"))


def test_webhook_changes_in_the_admin_are_audited_in_the_webhooks_workspace(staff_client, user):
    form = {"name": "github", "owner": user.pk, "enabled": "on", "query_template": "", "options": "{}",
            "callback_url": "", "_save": "Save"}
    assert staff_client.post("/admin/triggers/webhook/add/", form).status_code == 302
    webhook = Webhook.objects.get()
    assert staff_client.post(f"/admin/triggers/webhook/{webhook.pk}/change/",
                             {**form, "name": "github-2"}).status_code == 302
    assert staff_client.post("/admin/triggers/webhook/", {"action": "rotate_secret",
                                                          "_selected_action": [webhook.pk]}).status_code == 302
    secrets = {webhook.secret, Webhook.objects.get().secret}
    assert staff_client.post(f"/admin/triggers/webhook/{webhook.pk}/delete/", {"post": "yes"}).status_code == 302
    events = rows("webhook")
    assert [event.action for event in events] == ["webhook.create", "webhook.change", "webhook.rotate_secret",
                                                  "webhook.delete"]
    assert {event.workspace_id for event in events} == {webhook.workspace_id}
    assert {event.actor for event in events} == {"staff"}
    assert events[1].before["name"] == "github" and events[1].after["name"] == "github-2"
    logged = json.dumps([[event.before, event.after] for event in events])
    assert not any(secret in logged for secret in secrets) and events[0].after["secret"] == "[redacted]"


def test_schedule_changes_in_the_admin_are_audited_with_their_timing(staff_client, user):
    form = {"name": "nightly", "owner": user.pk, "query": "Summarise", "enabled": "on", "options": "{}",
            "callback_url": "", "interval_minutes": "5", "crontab": "", "_save": "Save"}
    assert staff_client.post("/admin/triggers/scheduledquery/add/", form).status_code == 302
    schedule = ScheduledQuery.objects.get()
    changed = {**form, "interval_minutes": "", "crontab": "0 3 * * *"}
    assert staff_client.post(f"/admin/triggers/scheduledquery/{schedule.pk}/change/", changed).status_code == 302
    assert staff_client.post(f"/admin/triggers/scheduledquery/{schedule.pk}/delete/",
                             {"post": "yes"}).status_code == 302
    events = rows("schedule")
    assert [event.action for event in events] == ["schedule.create", "schedule.change", "schedule.delete"]
    assert events[0].after["interval_minutes"] == 5 and events[0].workspace_id == schedule.workspace_id
    assert events[1].before["interval_minutes"] == 5 and events[1].after["crontab"] == "0 3 * * *"
    assert events[2].before["crontab"] == "0 3 * * *" and events[2].after is None


def test_a_refused_admin_form_writes_no_row(staff_client, user):
    form = {"name": "bad", "owner": user.pk, "query": "q", "enabled": "on", "options": "{}", "callback_url": "",
            "interval_minutes": "", "crontab": "99 * * * *", "_save": "Save"}
    assert staff_client.post("/admin/triggers/scheduledquery/add/", form).status_code == 200
    assert not AuditEvent.objects.exists()
