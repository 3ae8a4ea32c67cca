"""Workspace scoping beyond tasks: datasets, memory entries, webhook tasks."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

WHO = ("viewer", "operator", "prompt_editor", "admin", "outsider", "staff")


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.parametrize("who", WHO)
def test_datasets_are_read_by_members_and_changed_by_prompt_editors(team, who):
    from evals.models import Dataset

    dataset = Dataset.objects.create(owner=team.members["admin"], workspace=team.workspace, name="team-set")
    client = api(team.members[who])
    read = {"outsider": 404}.get(who, 200)
    change = {"outsider": 404, "viewer": 403, "operator": 403}.get(who, 200)
    assert client.get(f"/api/v1/datasets/{dataset.pk}/").status_code == read
    response = client.patch(f"/api/v1/datasets/{dataset.pk}/", {"description": "changed"}, format="json")
    assert response.status_code == change, response.content


def test_owned_rows_go_to_the_owner_default_workspace(user):
    from memory.services import memory_add
    from triggers.models import Webhook

    entry = memory_add(owner=user, content="A note of Alice.")
    hook = Webhook.objects.create(owner=user, name="hook")
    assert entry.workspace_id == hook.workspace_id == user.personal_workspace.pk


def test_webhook_and_schedule_tasks_go_to_their_workspace(team):
    from triggers.services import triggered_task_create

    task = triggered_task_create(owner=team.members["operator"], query="From a hook", trigger="webhook", details={},
                                 options={}, workspace_id=team.workspace.pk)
    assert task.workspace_id == team.workspace.pk
    assert api(team.members["viewer"]).get(f"/api/v1/tasks/{task.pk}").status_code == 200
