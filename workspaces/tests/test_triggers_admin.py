"""A workspace's admins manage its webhooks and schedules over the API and on the workspaces
page: operators and above read them (no secrets), admins change them, 404 outside the
workspace, 403 below the role; one audit row per change; bad input is a 400 naming the field."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tasks.tests.test_schema_api import check, schema_document  # noqa: F401 (fixtures)
from triggers.tests.conftest import signed_post
from workspaces.models import AuditEvent

READERS = {"viewer": 403, "operator": 200, "prompt_editor": 200, "admin": 200, "outsider": 404, "staff": 200}
WRITERS = {"viewer": 403, "operator": 403, "prompt_editor": 403, "admin": None, "outsider": 404, "staff": None}


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def base(team) -> str:
    return f"/api/v1/workspaces/{team.workspace.pk}"


def audit_count() -> int:
    return AuditEvent.objects.count()


@pytest.fixture
def hook(team):
    created = api(team.members["admin"]).post(f"{base(team)}/webhooks", {"name": "ci"}, format="json")
    assert created.status_code == 201, created.content
    return created.json()


@pytest.fixture
def schedule(team):
    created = api(team.members["admin"]).post(f"{base(team)}/schedules",
                                              {"name": "daily", "query": "Summarise the news", "crontab": "0 8 * * *"},
                                              format="json")
    assert created.status_code == 201, created.content
    return created.json()


# --- the role matrix over REST -------------------------------------------------------------

@pytest.mark.parametrize("who", list(READERS))
def test_who_may_read_webhooks_and_schedules(team, hook, schedule, who):
    client = api(team.members[who])
    for path in ("webhooks", f"webhooks/{hook['id']}", "schedules", f"schedules/{schedule['id']}"):
        response = client.get(f"{base(team)}/{path}")
        assert response.status_code == READERS[who], (path, response.content)
        if response.status_code == 200:
            assert hook["secret"] not in response.content.decode()
            assert "secret" not in json.dumps(response.json()).replace("secrets", "")


@pytest.mark.parametrize("who", list(WRITERS))
def test_who_may_change_webhooks(team, hook, who):
    from triggers.models import Webhook

    client, expected = api(team.members[who]), WRITERS[who]
    actions = [
        ("post", "webhooks", {"name": "new"}, 201),
        ("patch", f"webhooks/{hook['id']}", {"enabled": False}, 200),
        ("post", f"webhooks/{hook['id']}/rotate", None, 200),
        ("delete", f"webhooks/{hook['id']}", None, 204),
    ]
    for method, path, body, allowed in actions:
        before = audit_count()
        response = getattr(client, method)(f"{base(team)}/{path}", body, format="json")
        assert response.status_code == (expected or allowed), (method, path, response.content)
        assert audit_count() - before == (1 if expected is None else 0), (method, path)
        if expected is not None:
            assert response.json()["error"]["code"] == ("forbidden" if expected == 403 else "not_found")
    assert Webhook.objects.filter(pk=hook["id"]).exists() == (expected is not None)


@pytest.mark.parametrize("who", list(WRITERS))
def test_who_may_change_schedules(team, schedule, who):
    from triggers.models import ScheduledQuery

    client, expected = api(team.members[who]), WRITERS[who]
    actions = [
        ("post", "schedules", {"name": "hourly", "query": "Check the queue", "interval_minutes": 60}, 201),
        ("patch", f"schedules/{schedule['id']}", {"enabled": False}, 200),
        ("delete", f"schedules/{schedule['id']}", None, 204),
    ]
    for method, path, body, allowed in actions:
        before = audit_count()
        response = getattr(client, method)(f"{base(team)}/{path}", body, format="json")
        assert response.status_code == (expected or allowed), (method, path, response.content)
        assert audit_count() - before == (1 if expected is None else 0), (method, path)
    assert ScheduledQuery.objects.filter(pk=schedule["id"]).exists() == (expected is not None)


def test_another_workspaces_webhook_or_schedule_is_not_found_here(team, user):
    from triggers.models import ScheduledQuery, Webhook
    from triggers.schedules import scheduled_query_save

    theirs = Webhook.objects.create(owner=user, name="private")
    their_schedule = scheduled_query_save(schedule=ScheduledQuery(owner=user, name="theirs", query="q"),
                                          interval_minutes=5)
    admin = api(team.members["admin"])
    for method in ("get", "patch", "delete"):
        assert getattr(admin, method)(f"{base(team)}/webhooks/{theirs.pk}", {}, format="json").status_code == 404
        assert getattr(admin, method)(f"{base(team)}/schedules/{their_schedule.pk}", {},
                                      format="json").status_code == 404
    assert admin.post(f"{base(team)}/webhooks/{theirs.pk}/rotate").status_code == 404
    # Their own workspace is outside the team admin's.
    assert admin.get(f"/api/v1/workspaces/{theirs.workspace_id}/webhooks").status_code == 404
    for bad in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        assert admin.get(f"{base(team)}/webhooks/{bad}").status_code == 404
    for bad in ("x", "0", "-1", "1.5", "9" * 30):
        assert admin.get(f"{base(team)}/schedules/{bad}").status_code == 404
        assert admin.delete(f"{base(team)}/schedules/{bad}").status_code == 404
    page = page_client(team.members["admin"])
    assert page.post(f"/workspaces/{team.workspace.pk}/webhooks/{theirs.pk}/delete").status_code == 404
    assert page.post(f"/workspaces/{team.workspace.pk}/schedules/{their_schedule.pk}/delete").status_code == 404
    assert page.post(f"/workspaces/{theirs.workspace_id}/webhooks/{theirs.pk}/delete").status_code == 404
    assert Webhook.objects.filter(pk=theirs.pk).exists() and ScheduledQuery.objects.filter(pk=their_schedule.pk)
    assert not AuditEvent.objects.filter(target_type__in=["webhook", "schedule"]).exists()


# --- what is written, and what the log keeps -------------------------------------------------

def test_audit_rows_say_who_what_before_and_after_without_the_secret(team, settings):
    settings.CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.HTTP_ALLOW_PRIVATE_ADDRESSES = True
    admin = api(team.members["admin"])
    created = admin.post(f"{base(team)}/webhooks", {
        "name": "deploys", "query_template": "Review deploy {{ id }}", "options": {"allow_human": False},
        "callback_url": "http://127.0.0.1:9/cb?token=abc123"}, format="json").json()
    rotated = admin.post(f"{base(team)}/webhooks/{created['id']}/rotate").json()
    assert rotated["secret"] != created["secret"] and rotated["secret"].startswith("whsec_")
    admin.patch(f"{base(team)}/webhooks/{created['id']}", {"name": "deploys-2", "enabled": False}, format="json")
    admin.delete(f"{base(team)}/webhooks/{created['id']}")
    events = list(AuditEvent.objects.filter(workspace=team.workspace, target_type="webhook").order_by("id"))
    assert [event.action for event in events] == ["webhook.create", "webhook.rotate_secret", "webhook.change",
                                                   "webhook.delete"]
    assert {event.actor for event in events} == {"t-admin"} and {event.target_id for event in events} == {
        created["id"]}
    create, _, change, delete = events
    assert create.before is None and create.after["query_template"] == "Review deploy {{ id }}"
    assert change.before["name"] == "deploys" and change.after == {**change.before, "name": "deploys-2",
                                                                   "enabled": False}
    assert delete.before["name"] == "deploys-2" and delete.after is None
    logged = json.dumps([[event.before, event.after] for event in events])
    assert created["secret"] not in logged and rotated["secret"] not in logged and "abc123" not in logged
    assert create.after["secret"] == "[redacted]"


def test_a_schedule_lives_in_beat_and_its_changes_are_audited(team):
    from django_celery_beat.models import PeriodicTask

    from triggers.models import ScheduledQuery

    admin = api(team.members["admin"])
    created = admin.post(f"{base(team)}/schedules", {"name": "weekday", "query": "Summarise the open incidents",
                                                     "crontab": "0 8 * * mon-fri"}, format="json")
    assert created.status_code == 201 and created.json()["crontab"] == "0 8 * * mon-fri"
    schedule = ScheduledQuery.objects.get(pk=created.json()["id"])
    assert schedule.workspace_id == team.workspace.pk and schedule.owner == team.members["admin"]
    entry = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert entry.crontab.day_of_week == "mon-fri" and entry.enabled
    changed = admin.patch(f"{base(team)}/schedules/{schedule.pk}", {"interval_minutes": 30, "crontab": None,
                                                                    "enabled": False}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["interval_minutes"] == 30 and changed.json()["crontab"] is None
    entry.refresh_from_db()
    assert entry.interval.every == 30 and entry.crontab is None and not entry.enabled
    change = AuditEvent.objects.get(action="schedule.change")
    assert change.before["crontab"] == "0 8 * * mon-fri" and change.after["interval_minutes"] == 30
    assert admin.delete(f"{base(team)}/schedules/{schedule.pk}").status_code == 204
    assert not PeriodicTask.objects.filter(pk=entry.pk).exists()
    assert AuditEvent.objects.filter(action__startswith="schedule.").count() == 3


# --- bad input -------------------------------------------------------------------------------

WEBHOOK_BAD = [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": 42}, "name"),
    ({"name": "x", "enabled": "yes"}, "enabled"),
    ({"name": "x", "options": "fast"}, "options"),
    ({"name": "x", "options": [1]}, "options"),
    ({"name": "x", "options": {"step_budget": "ten"}}, "options.step_budget"),
    ({"name": "x", "options": {"colour": "red"}}, "options.colour"),
    ({"name": "x", "query_template": "{{ broken"}, "query_template"),
    ({"name": "x", "query_template": "{{ ''.__class__ }}"}, "query_template"),
    ({"name": "x", "query_template": 7}, "query_template"),
    ({"name": "x", "callback_url": "not a url"}, "callback_url"),
    ({"name": "x", "callback_url": "ftp://example.com/x"}, "callback_url"),
    ({"name": "x", "callback_url": "http://127.0.0.1/cb"}, "callback_url"),  # private, not on the allow-list
    ({"name": "x", "callback_url": "https://example.com/" + "a" * 500}, "callback_url"),
    ({"name": "x", "secret": "whsec_mine"}, "secret"),
    ({"name": "x", "owner": 1}, "owner"),
]

SCHEDULE_BAD = [
    ({"query": "q", "interval_minutes": 5}, "name"),
    ({"name": "s", "interval_minutes": 5}, "query"),
    ({"name": "s", "query": "", "interval_minutes": 5}, "query"),
    ({"name": "s", "query": "q"}, "interval_minutes"),
    ({"name": "s", "query": "q", "interval_minutes": 5, "crontab": "* * * * *"}, "interval_minutes"),
    ({"name": "s", "query": "q", "interval_minutes": 0}, "interval_minutes"),
    ({"name": "s", "query": "q", "interval_minutes": "5"}, "interval_minutes"),
    ({"name": "s", "query": "q", "interval_minutes": True}, "interval_minutes"),
    ({"name": "s", "query": "q", "interval_minutes": 10**12}, "interval_minutes"),
    ({"name": "s", "query": "q", "crontab": "61 * * * *"}, "crontab"),
    ({"name": "s", "query": "q", "crontab": "* * *"}, "crontab"),
    ({"name": "s", "query": "q", "crontab": ["0", "8"]}, "crontab"),
    # Celery accepts it, but the day-of-week column holds 64 characters.
    ({"name": "s", "query": "q", "crontab": "0 * * * " + ("mon,tue,wed,thu,fri,sat,sun," * 3)[:-1]}, "crontab"),
    ({"name": "daily", "query": "q", "interval_minutes": 5}, "name"),  # taken
    ({"name": "s", "query": "q", "interval_minutes": 5, "options": {"max_subtasks": 0}}, "options.max_subtasks"),
    ({"name": "s", "query": "q", "interval_minutes": 5, "callback_url": "javascript:alert(1)"}, "callback_url"),
    ({"name": "s", "query": "q", "interval_minutes": 5, "periodic_task": 1}, "periodic_task"),
]


@pytest.mark.parametrize(("body", "field"), WEBHOOK_BAD)
def test_a_bad_webhook_is_a_400_naming_the_field(team, body, field):
    from triggers.models import Webhook

    before = audit_count()
    response = api(team.members["admin"]).post(f"{base(team)}/webhooks", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field, response.json()
    assert not Webhook.objects.exists() and audit_count() == before


@pytest.mark.parametrize(("body", "field"), SCHEDULE_BAD)
def test_a_bad_schedule_is_a_400_naming_the_field(team, schedule, body, field):
    from triggers.models import ScheduledQuery

    before = audit_count()
    response = api(team.members["admin"]).post(f"{base(team)}/schedules", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field, response.json()
    assert ScheduledQuery.objects.count() == 1 and audit_count() == before


def test_bad_changes_are_refused_and_leave_things_as_they_were(team, hook, schedule):
    from triggers.models import ScheduledQuery, Webhook

    admin = api(team.members["admin"])
    before = audit_count()
    for body, field in (({"name": ""}, "name"), ({"options": {"step_budget": -1}}, "options.step_budget"),
                        ({"query_template": "{% if %}"}, "query_template"), ({"enabled": None}, "enabled")):
        response = admin.patch(f"{base(team)}/webhooks/{hook['id']}", body, format="json")
        assert response.status_code == 400 and response.json()["error"]["field"] == field, response.content
    for body, field in (({"crontab": "bad"}, "crontab"), ({"interval_minutes": 5, "crontab": "* * * * *"},
                                                           "interval_minutes"), ({"query": "  "}, "query")):
        response = admin.patch(f"{base(team)}/schedules/{schedule['id']}", body, format="json")
        assert response.status_code == 400 and response.json()["error"]["field"] == field, response.content
    assert admin.patch(f"{base(team)}/webhooks/{hook['id']}", [1, 2], format="json").status_code == 400
    assert admin.post(f"{base(team)}/webhooks", "name=x", content_type="text/plain").status_code == 415
    assert audit_count() == before
    assert Webhook.objects.get(pk=hook["id"]).name == "ci"
    assert ScheduledQuery.objects.get(pk=schedule["id"]).periodic_task.crontab.hour == "8"


# --- a webhook made over the API works ---------------------------------------------------------

def test_a_webhook_created_over_the_api_accepts_a_signed_delivery(team, client):
    from tasks.models import Task
    from triggers.models import Webhook

    admin = api(team.members["admin"])
    created = admin.post(f"{base(team)}/webhooks", {"name": "alerts", "options": {"allow_human": False},
                                                    "query_template": "Triage alert {{ alert }}"}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["url"].endswith(f"/hooks/{body['id']}/")
    webhook = Webhook.objects.get(pk=body["id"])
    accepted = signed_post(client, webhook, {"alert": "disk full"}, secret=body["secret"])
    assert accepted.status_code == 202, accepted.content
    task = Task.objects.get(pk=accepted.json()["task_id"])
    assert task.workspace_id == team.workspace.pk and task.owner == team.members["admin"]
    assert task.query == "Triage alert disk full" and task.trigger == "webhook"
    assert signed_post(client, webhook, {"alert": "x"}, secret="whsec_" + "0" * 64).status_code == 401

    rotated = admin.post(f"{base(team)}/webhooks/{body['id']}/rotate").json()["secret"]
    assert signed_post(client, webhook, {"alert": "again"}, secret=body["secret"]).status_code == 401
    assert signed_post(client, webhook, {"alert": "again"}, secret=rotated).status_code == 202
    assert admin.patch(f"{base(team)}/webhooks/{body['id']}", {"enabled": False}, format="json").status_code == 200
    assert signed_post(client, webhook, {"alert": "off"}, secret=rotated).status_code == 404


@pytest.mark.parametrize(("change", "still_runs"), [("removed", False), ("viewer", False), ("operator", True)])
def test_an_owner_removed_or_demoted_below_operator_starts_nothing_any_more(team, hook, schedule, client, change,
                                                                           still_runs):
    """A webhook's and a schedule's tasks run as their owner: once the owner may no longer
    start tasks in the workspace, the hook is a 404 like a disabled one and a run is skipped,
    saying why on the schedule (API and page)."""
    from tasks.models import Task
    from triggers.jobs import run_scheduled_query
    from triggers.models import Webhook
    from workspaces.services import membership_remove, membership_set

    staff, owner = team.members["staff"], team.members["admin"]
    membership_set(actor=staff, workspace=team.workspace, username="t-prompt_editor", role="admin")
    if change == "removed":
        membership_remove(actor=staff, workspace=team.workspace, username=owner.username)
    else:
        membership_set(actor=staff, workspace=team.workspace, username=owner.username, role=change)
    before = Task.objects.count()

    delivery = signed_post(client, Webhook.objects.get(pk=hook["id"]), {"query": "Triage"}, secret=hook["secret"])
    run = run_scheduled_query.apply(args=[schedule["id"]]).get()
    shown = api(team.members["prompt_editor"]).get(f"{base(team)}/schedules/{schedule['id']}").json()
    page = page_client(team.members["operator"]).get("/workspaces/").content.decode()
    if still_runs:
        assert delivery.status_code == 202, delivery.content
        assert run is not None and Task.objects.count() == before + 2
        assert shown["last_error"] is None and shown["last_task_id"] == run
        return
    assert delivery.status_code == 404 and delivery.json()["error"]["code"] == "not_found"
    assert run is None and Task.objects.count() == before
    reason = "not a member of" if change == "removed" else "a viewer of"
    assert shown["last_error"] == (f"its owner t-admin is {reason} this workspace; running it needs an operator "
                                   "or above")
    assert shown["last_error_at"] and shown["last_run_at"] is None
    assert "Did not run" in page and "its owner t-admin is" in page
    # Back as an operator, the next run starts a task and clears the error.
    membership_set(actor=staff, workspace=team.workspace, username=owner.username, role="operator")
    assert run_scheduled_query.apply(args=[schedule["id"]]).get() is not None
    assert signed_post(client, Webhook.objects.get(pk=hook["id"]), {"query": "Again"},
                       secret=hook["secret"]).status_code == 202
    shown = api(team.members["prompt_editor"]).get(f"{base(team)}/schedules/{schedule['id']}").json()
    assert shown["last_error"] is None and shown["last_error_at"] is None and shown["last_run_at"]
    assert "Did not run" not in page_client(team.members["operator"]).get("/workspaces/").content.decode()


# --- the schema ------------------------------------------------------------------------------

def test_every_webhook_and_schedule_operation_matches_the_schema(schema_document, check, team):  # noqa: F811
    admin, viewer, outsider = (api(team.members[who]) for who in ("admin", "viewer", "outsider"))
    root = base(team)
    hook = check(admin.post(f"{root}/webhooks", {"name": "ci"}, format="json"), 201).json()
    check(admin.post(f"{root}/webhooks", {"name": ""}, format="json"), 400)
    check(admin.post(f"{root}/webhooks", "x", content_type="text/plain"), 415)
    check(viewer.post(f"{root}/webhooks", {"name": "x"}, format="json"), 403)
    check(outsider.post(f"{root}/webhooks", {"name": "x"}, format="json"), 404)
    check(APIClient().get(f"{root}/webhooks"), 401)
    check(admin.get(f"{root}/webhooks"), 200)
    check(viewer.get(f"{root}/webhooks"), 403)
    check(admin.get(f"{root}/webhooks/{hook['id']}"), 200)
    check(admin.patch(f"{root}/webhooks/{hook['id']}", {"enabled": False}, format="json"), 200)
    check(admin.patch(f"{root}/webhooks/{hook['id']}", {"enabled": 1}, format="json"), 400)
    check(admin.post(f"{root}/webhooks/{hook['id']}/rotate"), 200)
    check(viewer.post(f"{root}/webhooks/{hook['id']}/rotate"), 403)
    check(admin.delete(f"{root}/webhooks/{hook['id']}"), 204)
    check(admin.delete(f"{root}/webhooks/{hook['id']}"), 404)
    made = check(admin.post(f"{root}/schedules", {"name": "s", "query": "q", "interval_minutes": 15},
                            format="json"), 201).json()
    check(admin.post(f"{root}/schedules", {"name": "t", "query": "q"}, format="json"), 400)
    check(admin.get(f"{root}/schedules"), 200)
    check(admin.get(f"{root}/schedules/{made['id']}"), 200)
    check(admin.patch(f"{root}/schedules/{made['id']}", {"crontab": "*/5 * * * *", "interval_minutes": None},
                      format="json"), 200)
    check(viewer.delete(f"{root}/schedules/{made['id']}"), 403)
    check(admin.delete(f"{root}/schedules/{made['id']}"), 204)
    documented = {(path, method.upper()) for path, operations in schema_document["paths"].items()
                  for method in operations if path.startswith("/api/v1/workspaces/{workspace_id}/webhooks")
                  or path.startswith("/api/v1/workspaces/{workspace_id}/schedules")}
    assert len(documented) == 11 and documented - {(path, method.upper()) for path, method in check.seen} == set()


# --- the workspaces page -------------------------------------------------------------------------

def page_client(user, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def test_the_page_lists_webhooks_and_schedules_for_operators_and_forms_for_admins(team, hook, schedule):
    for who, sees, forms in (("viewer", False, False), ("operator", True, False), ("prompt_editor", True, False),
                             ("admin", True, True), ("outsider", False, False)):
        page = page_client(team.members[who]).get("/workspaces/")
        assert page.status_code == 200
        text = page.content.decode()
        assert (f"/hooks/{hook['id']}/" in text) == sees, who
        assert ("daily" in text and "0 8 * * *" in text) == sees, who
        root = f'action="/workspaces/{team.workspace.pk}/'
        assert (f'{root}webhooks"' in text and f'{root}schedules"' in text) == forms, who
        assert (f"{root}webhooks/{hook['id']}/delete" in text) == forms, who
        assert hook["secret"] not in text


@pytest.mark.parametrize("who", ["viewer", "operator", "prompt_editor", "admin", "outsider", "staff"])
def test_who_may_create_and_delete_on_the_page(team, hook, schedule, who):
    from triggers.models import ScheduledQuery, Webhook

    client = page_client(team.members[who])
    root = f"/workspaces/{team.workspace.pk}"
    expected = {"viewer": 403, "operator": 403, "prompt_editor": 403, "outsider": 404}.get(who)
    steps = [
        (f"{root}/webhooks", {"name": "from-page", "options": '{"allow_human": false}'}, 200),
        (f"{root}/schedules", {"name": "page-daily", "query": "Summarise", "crontab": "0 9 * * *"}, 302),
        (f"{root}/webhooks/{hook['id']}/delete", {}, 302),
        (f"{root}/schedules/{schedule['id']}/delete", {}, 302),
    ]
    for path, data, allowed in steps:
        before = audit_count()
        response = client.post(path, data)
        assert response.status_code == (expected or allowed), (path, response.status_code)
        assert audit_count() - before == (0 if expected else 1), path
    created = Webhook.objects.filter(name="from-page").first()
    assert (created is not None) == (expected is None)
    assert ScheduledQuery.objects.filter(name="page-daily").exists() == (expected is None)
    assert Webhook.objects.filter(pk=hook["id"]).exists() == (expected is not None)
    if created is not None:
        assert created.workspace_id == team.workspace.pk and created.options == {"allow_human": False}


def test_the_page_shows_a_new_webhooks_secret_once(team):
    from triggers.models import Webhook

    client = page_client(team.members["admin"])
    response = client.post(f"/workspaces/{team.workspace.pk}/webhooks", {"name": "github"})
    webhook = Webhook.objects.get(name="github")
    assert webhook.secret in response.content.decode() and response["Cache-Control"] == "no-store"
    assert webhook.secret not in client.get("/workspaces/").content.decode()


@pytest.mark.parametrize(("path", "data", "field"), [
    ("webhooks", {"name": ""}, "name"),
    ("webhooks", {"name": "x", "options": "{not json"}, "options"),
    ("webhooks", {"name": "x", "query_template": "{{ broken"}, "query_template"),
    ("webhooks", {"name": "x", "callback_url": "http://127.0.0.1/cb"}, "callback_url"),
    ("schedules", {"name": "s", "query": "q", "crontab": "99 * * * *"}, "crontab"),
    ("schedules", {"name": "s", "query": "q", "interval_minutes": "often"}, "interval_minutes"),
    ("schedules", {"name": "s", "query": "q"}, "interval_minutes"),
    ("webhooks", {"name": "nul\x00"}, "name"),
    ("webhooks", {"name": "x", "options": '{"require_approval": ["a\\u0000"]}'}, "options.require_approval[0]"),
    ("schedules", {"name": "s", "query": "q\x00", "interval_minutes": "5"}, "query"),
])
def test_bad_input_on_the_page_is_a_400_naming_the_field(team, path, data, field):
    from triggers.models import ScheduledQuery, Webhook

    response = page_client(team.members["admin"]).post(f"/workspaces/{team.workspace.pk}/{path}", data)
    assert response.status_code == 400
    assert f"{field}:" in response.content.decode()
    assert not Webhook.objects.exists() and not ScheduledQuery.objects.exists()
    assert not AuditEvent.objects.filter(action__in=["webhook.create", "schedule.create"]).exists()


def test_page_forms_need_the_csrf_token(team, hook):
    from triggers.models import Webhook

    client = page_client(team.members["admin"], csrf=True)
    assert client.post(f"/workspaces/{team.workspace.pk}/webhooks", {"name": "x"}).status_code == 403
    assert client.post(f"/workspaces/{team.workspace.pk}/webhooks/{hook['id']}/delete").status_code == 403
    assert Webhook.objects.count() == 1
    page = client.get("/workspaces/").content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    response = client.post(f"/workspaces/{team.workspace.pk}/webhooks/{hook['id']}/delete",
                           {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and not Webhook.objects.exists()


@pytest.mark.parametrize("workspace_id", ["x", "0", "9" * 30])
def test_an_unknown_workspace_is_a_404_not_a_500(team, workspace_id):
    admin = api(team.members["admin"])
    assert admin.get(f"/api/v1/workspaces/{workspace_id}/webhooks").status_code == 404
    assert admin.post(f"/api/v1/workspaces/{workspace_id}/schedules", {"name": "s"}, format="json").status_code == 404
    if workspace_id.isdigit():
        assert page_client(team.members["admin"]).post(f"/workspaces/{workspace_id}/webhooks",
                                                       {"name": "x"}).status_code == 404


def test_schedule_names_are_unique_per_workspace_only(team, schedule, user):
    """Another workspace's schedule of the same name neither blocks nor shows through."""
    from triggers.models import ScheduledQuery
    from triggers.schedules import scheduled_query_save

    scheduled_query_save(schedule=ScheduledQuery(owner=user, name="weekly", query="q"), interval_minutes=5)
    admin = api(team.members["admin"])
    taken_elsewhere = admin.post(f"{base(team)}/schedules", {"name": "weekly", "query": "q", "interval_minutes": 5},
                                 format="json")
    assert taken_elsewhere.status_code == 201, taken_elsewhere.content
    renamed = admin.patch(f"{base(team)}/schedules/{taken_elsewhere.json()['id']}", {"name": "daily"}, format="json")
    assert renamed.status_code == 400 and renamed.json()["error"]["field"] == "name"
    assert ScheduledQuery.objects.filter(name="weekly").count() == 2


def test_the_staff_admin_refuses_a_name_taken_in_the_same_workspace(team, staff_user, client):
    from triggers.models import ScheduledQuery
    from triggers.schedules import scheduled_query_save

    scheduled_query_save(schedule=ScheduledQuery(owner=staff_user, name="nightly", query="q"), interval_minutes=5)
    client.force_login(staff_user)
    form = {"name": "nightly", "owner": staff_user.pk, "query": "q", "enabled": "on", "options": "{}",
            "callback_url": "", "interval_minutes": "5", "crontab": "", "_save": "Save"}
    refused = client.post("/admin/triggers/scheduledquery/add/", form)
    assert refused.status_code == 200 and "already has a schedule with this name" in refused.content.decode()
    form["owner"] = team.members["admin"].pk  # their personal workspace: no clash
    assert client.post("/admin/triggers/scheduledquery/add/", form).status_code == 302
    assert ScheduledQuery.objects.filter(name="nightly").count() == 2
