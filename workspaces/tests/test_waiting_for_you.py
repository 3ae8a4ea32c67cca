"""The dashboard's "Waiting for you": every task waiting for an answer that the viewer may
give (operator or higher in its workspace), not only their own; nothing for viewers."""

from __future__ import annotations

import pytest
from django.test import Client

from tasks.models import Task
from workspaces.tests.conftest import waiting

pytestmark = pytest.mark.django_db


def dashboard(user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def section(page: str) -> str:
    if 'id="waiting-for-you"' not in page:
        return ""
    return page.split('id="waiting-for-you"', 1)[1].split("</section>", 1)[0]


@pytest.mark.parametrize(("who", "listed"), [("operator", True), ("prompt_editor", True), ("admin", True),
                                             ("staff", True), ("viewer", False), ("outsider", False)])
def test_a_team_question_is_listed_for_everyone_who_may_answer_it(team, who, listed):
    waiting(team.task)
    part = section(dashboard(team.members[who]))
    assert (str(team.task.pk) in part) is listed
    if listed:
        assert "Which year?" in part and "Team" in part and "t-operator" in part  # question, workspace, starter
        assert f'href="/tasks/{team.task.pk}' in part


def test_an_approval_names_the_tool_and_other_tasks_are_not_listed(team):
    waiting(team.task, approval=True)
    running = Task.objects.create(owner=team.members["admin"], workspace=team.workspace, query="Still running",
                                  status="running")
    part = section(dashboard(team.members["admin"]))  # admin did not start the task
    assert "Approval" in part and "calculator" in part and str(team.task.pk) in part
    assert str(running.pk) not in part


def test_no_section_when_nothing_waits(team):
    assert 'id="waiting-for-you"' not in dashboard(team.members["operator"])


def test_the_section_is_translated(team):
    waiting(team.task)
    client = Client(headers={"accept-language": "es"})
    client.force_login(team.members["operator"])
    part = section(client.get("/").content.decode())
    assert "Esperando tu respuesta" in part and "Pregunta" in part and "en Team" in part
    assert "iniciada por t-operator" in part


def test_the_workspace_and_audit_pages_are_translated(team):
    client = Client(headers={"accept-language": "es"})
    client.force_login(team.members["admin"])
    page = client.get("/workspaces/").content.decode()
    assert "Espacios de trabajo" in page and "Registro de auditoría" in page and "Miembro" in page
    audit = client.get(f"/workspaces/{team.workspace.pk}/audit").content.decode()
    assert "Registro de auditoría de Team" in audit and "Exportación JSON" in audit
