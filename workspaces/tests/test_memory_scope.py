"""Memory belongs to workspaces: a person's search sees the entries of their workspaces (and
the shared knowledge base), a task's search and its result entry use the task's workspace."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from memory.models import MemoryEntry
from memory.services import memory_add, memory_search

pytestmark = pytest.mark.django_db

WHO = ("viewer", "operator", "prompt_editor", "admin", "outsider", "staff")


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def notes(team):
    admin, operator = team.members["admin"], team.members["operator"]
    return {
        "team": memory_add(owner=admin, workspace=team.workspace,
                           content="Kafka brokers of the team run on port 9093."),
        # The operator's own note, in their personal workspace: not the team's.
        "personal": memory_add(owner=operator, content="Kafka on my laptop listens on port 9092."),
        "shared": memory_add(owner=None, content="Kafka stores messages in partitioned topics."),
        "outsider": memory_add(owner=team.members["outsider"], content="Kafka port notes of an outsider 9094."),
    }


@pytest.fixture
def agents(db):
    """Prompts, tools and agents (no knowledge base, so the shared entries are only ours)."""
    import prompts.defaults
    import tasks.defaults
    import tools.defaults

    prompts.defaults.load_defaults()
    tools.defaults.load_defaults()
    tasks.defaults.load_defaults()


def ids(hits) -> set:
    return {hit.id if hasattr(hit, "id") else hit["id"] for hit in hits}


def test_a_person_sees_the_entries_of_every_workspace_they_belong_to(team, notes):
    query = "Kafka port"
    assert ids(memory_search(query=query, owner=team.members["operator"], k=10)) == {
        notes["team"].id, notes["personal"].id, notes["shared"].id}
    # A teammate sees the team's note, written by someone else, but not the operator's own.
    assert ids(memory_search(query=query, owner=team.members["viewer"], k=10)) == {notes["team"].id,
                                                                                   notes["shared"].id}
    assert ids(memory_search(query=query, owner=team.members["outsider"], k=10)) == {notes["outsider"].id,
                                                                                     notes["shared"].id}


def test_one_workspace_search_and_leaving_a_workspace(team, notes):
    from workspaces.models import Membership

    operator = team.members["operator"]
    assert ids(memory_search(query="Kafka port", workspace=team.workspace.pk, k=10)) == {notes["team"].id,
                                                                                         notes["shared"].id}
    Membership.objects.filter(user=operator, workspace=team.workspace).delete()
    assert ids(memory_search(query="Kafka port", owner=operator, k=10)) == {notes["personal"].id,
                                                                             notes["shared"].id}


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_rest_search_scopes_to_the_caller_workspaces(team, notes, mode):
    response = api(team.members["viewer"]).get("/api/v1/memory/", {"q": "Kafka port", "k": 10, "mode": mode})
    assert response.status_code == 200
    assert ids(response.json()["results"]) == {notes["team"].id, notes["shared"].id}


@pytest.mark.parametrize("who", WHO)
def test_rest_search_of_one_workspace(team, notes, who):
    response = api(team.members[who]).get("/api/v1/memory/", {"q": "Kafka port", "k": 10,
                                                              "workspace": team.workspace.pk})
    if who == "outsider":
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
        return
    assert response.status_code == 200
    assert ids(response.json()["results"]) == {notes["team"].id, notes["shared"].id}


@pytest.mark.parametrize("who", WHO)
def test_rest_add_to_a_workspace_needs_an_operator(team, who):
    response = api(team.members[who]).post("/api/v1/memory/", {"content": "Team runbook: restart the broker.",
                                                               "workspace": team.workspace.pk}, format="json")
    expected = {"outsider": 404, "viewer": 403}.get(who, 201)
    assert response.status_code == expected, response.content
    if expected == 201:
        entry = MemoryEntry.objects.get(pk=response.json()["id"])
        assert entry.workspace_id == response.json()["workspace"] == team.workspace.pk
        assert entry.owner_id == team.members[who].pk
    else:
        assert not MemoryEntry.objects.filter(content__startswith="Team runbook").exists()


def test_rest_add_without_a_workspace_goes_to_the_personal_one(team):
    user = team.members["viewer"]
    response = api(user).post("/api/v1/memory/", {"content": "My own note."}, format="json")
    assert response.status_code == 201
    assert response.json()["workspace"] == user.personal_workspace.pk


def test_rest_add_to_an_unknown_workspace_is_404(team):
    response = api(team.members["admin"]).post("/api/v1/memory/", {"content": "x", "workspace": 999999},
                                               format="json")
    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)  # tools run on pool threads, which see committed rows only
def test_memory_tools_of_a_task_use_its_workspace(team, notes, agents):
    from tools.dispatch import ToolContext, dispatch

    operator = team.members["operator"]
    context = ToolContext(owner_id=operator.pk, task_id=str(team.task.pk), idempotency_key=f"{team.task.pk}:5",
                          workspace_id=team.workspace.pk)
    outcome = dispatch(name="memory_search", arguments={"query": "Kafka port", "k": 10}, context=context)
    assert outcome.ok, outcome.error
    assert ids(outcome.result["hits"]) == {notes["team"].id, notes["shared"].id}
    stored = dispatch(name="memory_store", arguments={"content": "The team's broker needs TLS."}, context=context)
    assert stored.ok, stored.error
    assert MemoryEntry.objects.get(pk=stored.result["id"]).workspace_id == team.workspace.pk


def test_a_task_prefetches_and_remembers_in_its_workspace(team, notes, agents, django_capture_on_commit_callbacks):
    """The plan's memory pre-fetch sees the task's workspace (not its owner's personal notes)
    and the result entry goes to the task's workspace."""
    from tasks.runner import run_slice
    from workspaces.task_actions import task_create_as

    operator = team.members["operator"]
    task = task_create_as(actor=operator, workspace_id=team.workspace.pk, query="Which Kafka port do we use?")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(30):
            if run_slice(task.id, worker_id="w1").outcome != "continue":
                break
    task.refresh_from_db()
    plan = task.steps.get(kind="plan")
    prefetched = {int(hit["id"]) for hit in plan.input["memory"]}
    assert notes["team"].id in prefetched
    assert not prefetched & {notes["personal"].id, notes["outsider"].id}
    if task.status == "completed":
        entry = MemoryEntry.objects.get(source_task_id=task.pk, kind="task_result")
        assert entry.workspace_id == team.workspace.pk and entry.owner_id == operator.pk


def test_a_completed_team_task_result_goes_to_the_team(team):
    from tasks.execution import task_result_remember
    from tasks.models import Task

    Task.objects.filter(pk=team.task.pk).update(status="completed", result="42")
    entry_id = task_result_remember(task_id=team.task.pk)
    entry = MemoryEntry.objects.get(pk=entry_id)
    assert entry.workspace_id == team.workspace.pk and entry.owner_id == team.members["operator"].pk
    assert entry.workspace_id != team.members["operator"].personal_workspace.pk
