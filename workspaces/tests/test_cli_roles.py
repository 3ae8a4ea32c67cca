"""`manage.py agent`: every command acts as --user with their roles, like the API: a task
outside their workspaces is not found, a role too low is refused, controls are audited."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tasks.models import Task
from workspaces.models import AuditEvent
from workspaces.tests.conftest import waiting

pytestmark = pytest.mark.django_db


def agent(*args: str) -> str:
    out = StringIO()
    call_command("agent", *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("where", ["id", "slug"])
def test_run_in_a_workspace_needs_an_operator(team, where):
    workspace = str(team.workspace.pk) if where == "id" else team.workspace.slug
    with pytest.raises(CommandError, match="does not allow"):
        agent("run", "What is 2 + 2?", "--user", "t-viewer", "--workspace", workspace, "--no-wait")
    with pytest.raises(CommandError, match="not found"):
        agent("run", "What is 2 + 2?", "--user", "t-outsider", "--workspace", workspace, "--no-wait")
    assert not Task.objects.filter(query="What is 2 + 2?").exists()
    out = agent("run", "What is 2 + 2?", "--user", "t-operator", "--workspace", workspace, "--no-wait")
    task = Task.objects.get(query="What is 2 + 2?")
    assert f"task {task.id} queued" in out
    assert (task.workspace_id, task.owner, task.trigger) == (team.workspace.pk, team.members["operator"], "cli")


def test_run_without_a_workspace_goes_to_the_personal_one(team):
    agent("run", "What is 3 + 3?", "--user", "t-viewer", "--no-wait")
    assert Task.objects.get(query="What is 3 + 3?").workspace == team.members["viewer"].personal_workspace


@pytest.mark.parametrize(("who", "expected"), [("viewer", "does not allow"), ("outsider", "not found"),
                                               ("operator", None), ("admin", None)])
def test_pause_checks_the_role_and_is_audited(team, who, expected):
    before = AuditEvent.objects.count()
    if expected:
        with pytest.raises(CommandError, match=expected):
            agent("pause", str(team.task.pk), "--user", f"t-{who}")
        assert AuditEvent.objects.count() == before
        team.task.refresh_from_db()
        assert not team.task.pause_requested
        return
    out = agent("pause", str(team.task.pk), "--user", f"t-{who}")
    assert f"task {team.task.pk}" in out
    [event] = AuditEvent.objects.order_by("id")[before:]
    assert (event.action, event.actor, event.workspace_id) == ("task.pause", f"t-{who}", team.workspace.pk)


def test_show_is_for_every_member_only(team):
    assert f"task {team.task.pk} running" in agent("show", str(team.task.pk), "--user", "t-viewer")
    with pytest.raises(CommandError, match="not found"):
        agent("show", str(team.task.pk), "--user", "t-outsider")
    with pytest.raises(CommandError, match="not found"):
        agent("show", "not-a-uuid", "--user", "t-viewer")


def test_respond_to_an_approval_as_an_operator(team):
    waiting(team.task, approval=True)
    with pytest.raises(CommandError, match="does not allow"):
        agent("respond", str(team.task.pk), "--deny", "--user", "t-viewer")
    before = AuditEvent.objects.count()
    agent("respond", str(team.task.pk), "--approve", "--comment", "fine", "--user", "t-admin")
    [event] = AuditEvent.objects.order_by("id")[before:]
    assert (event.action, event.actor) == ("task.approve", "t-admin")
    response = team.task.steps.order_by("-index").first()
    assert response.kind == "human_response" and response.input["answered_by"] == "t-admin"
    assert response.input["approve"] is True and response.input["comment"] == "fine"


def test_respond_to_a_question(team):
    waiting(team.task)
    agent("respond", str(team.task.pk), "--answer", "1996", "--user", "t-operator")
    response = team.task.steps.order_by("-index").first()
    assert response.input["answer"] == "1996" and response.input["answered_by"] == "t-operator"
    assert AuditEvent.objects.order_by("-id").first().action == "task.respond"
