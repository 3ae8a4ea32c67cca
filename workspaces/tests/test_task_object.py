"""The task object names its workspace, in the REST answers and in live events."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_the_task_object_names_its_workspace(team):
    client = APIClient()
    client.force_authenticate(team.members["viewer"])
    body = client.get(f"/api/v1/tasks/{team.task.pk}").json()
    assert body["workspace"] == {"id": team.workspace.pk, "name": "Team"}
    listed = client.get("/api/v1/tasks/").json()["results"]
    assert [task["workspace"] for task in listed] == [{"id": team.workspace.pk, "name": "Team"}]


def test_a_new_task_names_the_workspace_it_went_to(team):
    client = APIClient()
    client.force_authenticate(team.members["operator"])
    personal = client.post("/api/v1/tasks/", {"query": "What is 2 + 2?"}, format="json").json()
    assert personal["workspace"]["id"] == team.members["operator"].personal_workspace.pk
    shared = client.post("/api/v1/tasks/", {"query": "What is 2 + 3?", "workspace": team.workspace.pk},
                         format="json").json()
    assert shared["workspace"] == {"id": team.workspace.pk, "name": "Team"}


def test_a_renamed_workspace_shows_its_new_name(team):
    from tasks.live import status_event
    from tasks.models import Task

    task = Task.objects.get(pk=team.task.pk)  # the workspace not loaded with it, as in a worker
    assert status_event(task)["task"]["workspace"]["name"] == "Team"
    team.workspace.name = "Support"
    team.workspace.save()
    assert status_event(Task.objects.get(pk=team.task.pk))["task"]["workspace"] == {"id": team.workspace.pk,
                                                                                     "name": "Support"}
