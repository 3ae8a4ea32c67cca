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


@pytest.fixture
def team_dataset(team):
    import prompts.defaults
    from evals.models import Dataset
    from evals.services import dataset_item_create

    prompts.defaults.load_defaults()
    dataset = Dataset.objects.create(owner=team.members["admin"], workspace=team.workspace, name="team-set")
    dataset_item_create(dataset=dataset, query="What is 2 + 2?", checks=[{"type": "contains", "value": "4"}])
    return dataset


@pytest.mark.parametrize("who", WHO)
def test_eval_runs_are_started_by_operators_and_above(team, team_dataset, who):
    from evals.models import EvalRun

    response = api(team.members[who]).post(
        "/api/v1/evals/runs", {"dataset": team_dataset.pk, "prompt": "plan", "version": 1}, format="json")
    expected = {"outsider": 404, "viewer": 403}.get(who, 201)
    assert response.status_code == expected, response.content
    if expected == 201:
        assert EvalRun.objects.get().workspace_id == team.workspace.pk
    else:
        assert response.json()["error"]["code"] == {403: "forbidden", 404: "not_found"}[expected]
        assert not EvalRun.objects.exists()


@pytest.mark.parametrize("who", WHO)
def test_the_evals_page_starts_runs_for_operators_and_above(client, team, team_dataset, who):
    from evals.models import EvalRun
    from prompts.models import PromptVersion

    version = PromptVersion.objects.get(template__slug="plan", number=1)
    client.force_login(team.members[who])
    response = client.post("/evals/", {"dataset": team_dataset.pk, "version": version.pk})
    if who == "outsider":  # not among the datasets offered: the form refuses it, nothing starts
        assert response.status_code == 200 and not EvalRun.objects.exists()
    elif who == "viewer":
        assert response.status_code == 403 and not EvalRun.objects.exists()
    else:
        assert response.status_code == 302, response.content
        assert EvalRun.objects.get().workspace_id == team.workspace.pk


@pytest.mark.parametrize("who", WHO)
def test_datasets_are_created_by_prompt_editors_of_the_workspace(team, who):
    from evals.models import Dataset

    response = api(team.members[who]).post("/api/v1/datasets", {"name": "new-set", "workspace": team.workspace.pk},
                                           format="json")
    expected = {"outsider": 404, "viewer": 403, "operator": 403}.get(who, 201)
    assert response.status_code == expected, response.content
    if expected == 201:
        assert Dataset.objects.get(name="new-set").workspace_id == team.workspace.pk
    else:
        assert not Dataset.objects.filter(name="new-set").exists()


@pytest.mark.parametrize(("role", "expected"), [("viewer", 403), ("operator", 403), ("prompt_editor", 201)])
def test_a_service_token_creates_datasets_and_runs_by_its_role(team, team_dataset, role, expected):
    from evals.models import Dataset, EvalRun
    from workspaces.services import service_token_create

    token, _ = service_token_create(actor=team.members["admin"], workspace=team.workspace, name="ci", role=role)
    client = api(token.user)
    created = client.post("/api/v1/datasets", {"name": "ci-set"}, format="json")  # its one workspace
    assert created.status_code == expected, created.content
    assert Dataset.objects.filter(name="ci-set", workspace=team.workspace).exists() == (expected == 201)
    run = client.post("/api/v1/evals/runs", {"dataset": team_dataset.pk, "prompt": "plan", "version": 1},
                      format="json")
    assert run.status_code == (403 if role == "viewer" else 201), run.content
    assert EvalRun.objects.exists() == (role != "viewer")
