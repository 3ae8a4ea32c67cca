"""Role matrix: each role (and an outsider, and staff) x each task action over REST and the
pages: allowed, 403 (a member whose role may see but not act) or 404 (outside the workspace)."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from workspaces.tests.conftest import waiting

WHO = ("viewer", "operator", "prompt_editor", "admin", "outsider", "staff")
READ = {"viewer": 200, "operator": 200, "prompt_editor": 200, "admin": 200, "outsider": 404, "staff": 200}
ACT = {"viewer": 403, "operator": 200, "prompt_editor": 200, "admin": 200, "outsider": 404, "staff": 200}


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("path", ["", "/steps", "/export"])
def test_rest_reads(team, who, path):
    response = api(team.members[who]).get(f"/api/v1/tasks/{team.task.pk}{path}")
    assert response.status_code == READ[who]
    if READ[who] == 404:
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("who", WHO)
def test_rest_list_shows_the_workspace_tasks_to_members_only(team, who):
    ids = [task["task_id"] for task in api(team.members[who]).get("/api/v1/tasks/").json()["results"]]
    assert (str(team.task.pk) in ids) == (who != "outsider")


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("action", ["pause", "cancel"])
def test_rest_control(team, who, action):
    response = api(team.members[who]).post(f"/api/v1/tasks/{team.task.pk}/{action}")
    assert response.status_code == ACT[who], response.content
    if ACT[who] == 403:
        assert response.json()["error"]["code"] == "forbidden"
    team.task.refresh_from_db()
    assert team.task.status == ("cancelled" if action == "cancel" and ACT[who] == 200 else team.task.status)


@pytest.mark.parametrize("who", WHO)
def test_rest_resume_and_retry_check_the_role_before_the_state(team, who):
    # A running task cannot be resumed (409) or retried (409): a viewer learns 403 first.
    expected = {200: 409}.get(ACT[who], ACT[who])
    for action in ("resume", "retry"):
        assert api(team.members[who]).post(f"/api/v1/tasks/{team.task.pk}/{action}").status_code == expected


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("approval", [False, True])
def test_rest_respond_reaches_every_operator_and_records_who(team, who, approval):
    waiting(team.task, approval=approval)
    body = {"approve": True} if approval else {"answer": "1999"}
    response = api(team.members[who]).post(f"/api/v1/tasks/{team.task.pk}/respond", body, format="json")
    assert response.status_code == ACT[who], response.content
    answer = team.task.steps.filter(kind="human_response").first()
    if ACT[who] == 200:
        assert answer.input["answered_by"] == team.members[who].username
        assert answer.input.get("approve" if approval else "answer") == (True if approval else "1999")
    else:
        assert answer is None


@pytest.mark.parametrize("who", WHO)
def test_rest_create_in_the_team_workspace(team, who):
    response = api(team.members[who]).post("/api/v1/tasks/", {"query": "Hello", "workspace": team.workspace.pk},
                                           format="json")
    assert response.status_code == {200: 201}.get(ACT[who], ACT[who]), response.content
    if response.status_code == 201:
        from tasks.models import Task

        assert Task.objects.get(pk=response.json()["task_id"]).workspace_id == team.workspace.pk


def test_new_tasks_go_to_the_personal_workspace_by_default(team):
    from tasks.models import Task

    viewer = team.members["viewer"]  # a viewer of the team is the admin of their own workspace
    response = api(viewer).post("/api/v1/tasks/", {"query": "Hello"}, format="json")
    assert response.status_code == 201
    task = Task.objects.get(pk=response.json()["task_id"])
    assert task.workspace.personal_for == viewer
    assert api(team.members["operator"]).get(f"/api/v1/tasks/{task.pk}").status_code == 404


@pytest.mark.parametrize("who", WHO)
def test_pages(team, who):
    client = Client()
    client.force_login(team.members[who])
    assert client.get(f"/tasks/{team.task.pk}/").status_code == READ[who]
    control = client.post(f"/tasks/{team.task.pk}/pause")
    assert control.status_code == {200: 302}.get(ACT[who], ACT[who])
    waiting(team.task)
    respond = client.post(f"/tasks/{team.task.pk}/respond", {"answer": "1999"})
    assert respond.status_code == {200: 302}.get(ACT[who], ACT[who])
    new = client.post("/tasks/new", {"query": "Hello", "workspace": team.workspace.pk})
    assert new.status_code == {200: 302}.get(ACT[who], ACT[who])
    fork = client.get(f"/tasks/{team.task.pk}/fork?at=0")
    assert fork.status_code == ACT[who]


def test_fork_link_only_for_those_who_may_fork(team):
    for who, shown in (("viewer", False), ("operator", True)):
        client = Client()
        client.force_login(team.members[who])
        waiting(team.task)
        page = client.get(f"/tasks/{team.task.pk}/").content.decode()
        assert (f"/tasks/{team.task.pk}/fork" in page) == shown
