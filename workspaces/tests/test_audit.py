"""The audit log: every audited action writes exactly one row (a refused one writes none),
rows cannot be changed or deleted, and admins read it as a page and as JSON."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test import Client
from rest_framework.test import APIClient

from workspaces.models import AppendOnly, AuditEvent
from workspaces.tests.conftest import waiting


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def rows(**filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(**filters).order_by("id"))


def one_new_row(before: int, **expected) -> AuditEvent:
    new = list(AuditEvent.objects.order_by("id"))[before:]
    assert len(new) == 1, [str(event) for event in new]
    for key, value in expected.items():
        assert getattr(new[0], key) == value, key
    return new[0]


def test_each_task_action_writes_one_row(team):
    operator = team.members["operator"]
    client = api(operator)
    task = team.task

    def act(action: str, body=None, expected_action=None, status=200):
        count = AuditEvent.objects.count()
        response = client.post(f"/api/v1/tasks/{task.pk}/{action}", body or {}, format="json")
        assert response.status_code == status, response.content
        return one_new_row(count, action=expected_action or f"task.{action}", actor=operator.username,
                           workspace_id=team.workspace.pk, target_id=str(task.pk))

    event = act("pause")
    assert event.before["status"] == "running" and event.after["status"] == "paused"
    act("resume")
    waiting(task)
    event = act("respond", {"answer": "1999"})
    assert event.before["waiting_for"]["reason"] == "question" and event.after["waiting_for"] is None
    waiting(task, approval=True)
    act("respond", {"approve": True}, expected_action="task.approve")
    waiting(task, approval=True)
    act("respond", {"approve": False, "comment": "no"}, expected_action="task.deny")
    act("cancel")
    from tasks.models import Task

    Task.objects.filter(pk=task.pk).update(status="failed", error="boom", finished_at=None)
    act("retry")
    event = act("fork", {"at": 0}, status=201)
    assert event.after["at"] == 0


def test_a_refused_action_writes_no_row(team):
    count = AuditEvent.objects.count()
    assert api(team.members["viewer"]).post(f"/api/v1/tasks/{team.task.pk}/pause").status_code == 403
    assert api(team.members["operator"]).post(f"/api/v1/tasks/{team.task.pk}/resume").status_code == 409
    assert api(team.members["outsider"]).post(f"/api/v1/tasks/{team.task.pk}/cancel").status_code == 404
    assert AuditEvent.objects.count() == count


def test_memberships_and_tokens_write_one_row_each(team, django_user_model):
    admin = api(team.members["admin"])
    base = f"/api/v1/workspaces/{team.workspace.pk}"
    django_user_model.objects.create_user("newcomer", password="pw")
    steps = [
        (lambda: admin.post(f"{base}/members", {"username": "newcomer", "role": "viewer"}, format="json"),
         "membership.add"),
        (lambda: admin.post(f"{base}/members", {"username": "newcomer", "role": "operator"}, format="json"),
         "membership.role"),
        (lambda: admin.delete(f"{base}/members/newcomer"), "membership.remove"),
        (lambda: admin.post(f"{base}/tokens", {"name": "ci", "role": "operator"}, format="json"), "token.create"),
    ]
    for call, action in steps:
        count = AuditEvent.objects.count()
        assert call().status_code in (200, 201, 204)
        one_new_row(count, action=action, workspace_id=team.workspace.pk, actor="t-admin")
    token_id = AuditEvent.objects.filter(action="token.create").latest("id").target_id
    for action in ("rotate", "revoke"):
        count = AuditEvent.objects.count()
        assert admin.post(f"{base}/tokens/{token_id}/{action}").status_code == 200
        one_new_row(count, action=f"token.{action}", target_id=token_id)


def test_personal_api_key_creation_and_rotation_are_audited(user):
    count = AuditEvent.objects.count()
    response = APIClient().post("/api/v1/auth/token", {"username": "alice", "password": "alice-password"},
                                format="json")
    assert response.status_code == 200
    one_new_row(count, action="token.create", actor="alice", target_type="api_key")
    count = AuditEvent.objects.count()
    assert APIClient().post("/api/v1/auth/token", {"username": "alice", "password": "alice-password"},
                            format="json").status_code == 200
    assert AuditEvent.objects.count() == count  # the same key again: nothing created
    client = Client()
    client.force_login(user)
    assert client.post("/account/rotate-key").status_code == 302
    one_new_row(count, action="token.rotate", actor="alice", workspace_id=user.personal_workspace.pk)


def test_rows_cannot_be_changed_or_deleted(team):
    from workspaces.audit import audit_record

    event = audit_record(actor=team.members["admin"], action="test.event", target_type="test",
                         workspace_id=team.workspace.pk)
    event.action = "changed"
    with pytest.raises(AppendOnly):
        event.save()
    with pytest.raises(AppendOnly):
        event.delete()
    with pytest.raises(AppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(action="changed")
    with pytest.raises(AppendOnly):
        AuditEvent.objects.filter(pk=event.pk).delete()
    for sql in ("UPDATE workspaces_auditevent SET action = 'x' WHERE id = %s",
                "DELETE FROM workspaces_auditevent WHERE id = %s"):
        with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "test.event"


@pytest.mark.parametrize("who,status", [("admin", 200), ("staff", 200), ("operator", 403), ("viewer", 403),
                                        ("outsider", 404)])
def test_audit_export_and_page_are_for_admins(team, who, status):
    api(team.members["operator"]).post(f"/api/v1/tasks/{team.task.pk}/pause")
    response = api(team.members[who]).get(f"/api/v1/workspaces/{team.workspace.pk}/audit")
    assert response.status_code == status
    client = Client()
    client.force_login(team.members[who])
    page = client.get(f"/workspaces/{team.workspace.pk}/audit")
    assert page.status_code == status
    if status == 200:
        assert [event["action"] for event in response.json()["events"]] == ["task.pause"]
        assert "task.pause" in page.content.decode()


def test_audit_filters(team):
    operator = api(team.members["operator"])
    operator.post(f"/api/v1/tasks/{team.task.pk}/pause")
    operator.post(f"/api/v1/tasks/{team.task.pk}/resume")
    admin = api(team.members["admin"])
    url = f"/api/v1/workspaces/{team.workspace.pk}/audit"

    def actions(**query) -> list[str]:
        return [event["action"] for event in admin.get(url, query).json()["events"]]

    assert actions() == ["task.resume", "task.pause"]
    assert actions(action="task.pause") == ["task.pause"]
    assert actions(action="task.") == ["task.resume", "task.pause"]
    assert actions(actor="t-admin") == []
    assert actions(since="2999-01-01T00:00:00Z") == []
    bad = admin.get(url, {"since": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "since"
    client = Client()
    client.force_login(team.members["admin"])
    assert client.get(f"/workspaces/{team.workspace.pk}/audit?since=yesterday").status_code == 400
