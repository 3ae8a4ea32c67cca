"""A team workspace with one member per role, an outsider and a task of the team."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

ROLES = ("viewer", "operator", "prompt_editor", "admin")


@dataclass
class Team:
    workspace: object
    members: dict  # role or "outsider" / "staff" -> user
    task: object


@pytest.fixture
def team(db, django_user_model):
    from tasks.models import Task
    from workspaces.models import Membership, Workspace

    workspace = Workspace.objects.create(name="Team", slug="team")
    members = {}
    for role in ROLES:
        members[role] = django_user_model.objects.create_user(f"t-{role}", password="pw")
        Membership.objects.create(workspace=workspace, user=members[role], role=role)
    members["outsider"] = django_user_model.objects.create_user("t-outsider", password="pw")
    members["staff"] = django_user_model.objects.create_user("t-staff", password="pw", is_staff=True)
    task = Task.objects.create(owner=members["operator"], workspace=workspace, query="What is 6 * 7?",
                               status="running")
    return Team(workspace=workspace, members=members, task=task)


def waiting(task, *, approval: bool = False) -> None:
    """Put the task in waiting_human on a question (or an approval) asked in a new step."""
    from django.db.models import Max

    from tasks.models import Step, Task

    Step.objects.get_or_create(task=task, index=0, defaults={"kind": "trigger"})
    last = Step.objects.filter(task=task).aggregate(last=Max("index"))["last"]
    Step.objects.create(task=task, index=last + 1, kind="human_request", input={"question": "Which year?"})
    waiting_for = {"step": last + 1, "reason": "approval" if approval else "question", "agent": "research",
                   "subtask": "s1", "question": "Which year?"}
    if approval:
        waiting_for["tool_call"] = {"tool": "calculator", "arguments": {"expression": "6*7"}}
    Task.objects.filter(pk=task.pk).update(status="waiting_human", waiting_for=waiting_for, step_count=last + 2,
                                           lease_owner=None, lease_expires_at=None)
    task.refresh_from_db()
