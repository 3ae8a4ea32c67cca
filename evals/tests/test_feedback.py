"""Feedback on tasks: the endpoint as owner, other user, staff and anonymous; per-version
figures; "add to dataset"."""

from __future__ import annotations

import pytest

from evals.models import DatasetItem, TaskFeedback
from evals.selectors import feedback_by_label, version_feedback
from evals.services import dataset_create, task_feedback_set
from tasks.models import Step, Task


def make_task(owner, labels=("plan@1", "agent_research@1", "agent_research@1", "synthesize@1")) -> Task:
    task = Task.objects.create(owner=owner, query="Compare Lisbon and Porto", status="completed", result="Done.")
    for index, label in enumerate(labels):
        Step.objects.create(task=task, index=index, kind="llm", prompt_label=label)
    Step.objects.create(task=task, index=len(labels), kind="result")
    return task


@pytest.fixture
def task(user):
    return make_task(user)


def url(task) -> str:
    return f"/api/v1/tasks/{task.pk}/feedback"


def test_owner_rates_then_changes_the_rating(auth_client, task):
    created = auth_client.post(url(task), {"rating": "up", "comment": "great"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json() | {"created_at": None, "updated_at": None} == {
        "task_id": str(task.pk), "user": "alice", "rating": "up", "comment": "great", "created_at": None,
        "updated_at": None}
    edited = auth_client.post(url(task).rstrip("/") + "/", {"rating": "down"}, format="json")
    assert edited.status_code == 200 and edited.json()["rating"] == "down" and edited.json()["comment"] == ""
    assert TaskFeedback.objects.get().rating == -1
    assert auth_client.get(url(task)).json()["rating"] == "down"
    assert auth_client.delete(url(task)).status_code == 204
    assert auth_client.get(url(task)).status_code == 404


def test_other_user_gets_404_and_changes_nothing(api_client, other_user, task):
    api_client.force_authenticate(other_user)
    for method in ("get", "post", "delete"):
        response = getattr(api_client, method)(url(task), {"rating": "down"}, format="json")
        assert response.status_code == 404
        assert response.json()["error"] == {"code": "not_found", "message": "task not found", "field": None}
    assert not TaskFeedback.objects.exists()


def test_anonymous_is_refused(api_client, task):
    response = api_client.post(url(task), {"rating": "up"}, format="json")
    assert response.status_code in (401, 403) and set(response.json()["error"]) == {"code", "message", "field"}


def test_staff_may_rate_any_task_separately(api_client, staff_user, user, task):
    task_feedback_set(user=user, task=task, rating=1)
    api_client.force_authenticate(staff_user)
    assert api_client.post(url(task), {"rating": "down"}, format="json").status_code == 201
    assert TaskFeedback.objects.count() == 2


@pytest.mark.parametrize("body", [{"rating": "meh"}, {}, {"rating": "up", "comment": "x" * 2001}])
def test_invalid_feedback(auth_client, task, body):
    response = auth_client.post(url(task), body, format="json")
    assert response.status_code == 400 and response.json()["error"]["field"] in ("rating", "comment")


def test_feedback_moves_the_figures_of_each_version_that_contributed(user, other_user, plan_versions):
    first = make_task(user)
    second = make_task(other_user, labels=("plan@2", "synthesize@1"))
    labels = ["plan@1", "plan@2", "agent_research@1", "synthesize@1"]
    assert feedback_by_label(labels=labels) == {label: {"up": 0, "down": 0} for label in labels}
    task_feedback_set(user=user, task=first, rating=1)
    figures = feedback_by_label(labels=labels)
    # agent_research@1 ran twice in the task; the task counts once.
    assert figures["plan@1"] == figures["agent_research@1"] == figures["synthesize@1"] == {"up": 1, "down": 0}
    assert figures["plan@2"] == {"up": 0, "down": 0}
    task_feedback_set(user=other_user, task=second, rating=-1)
    task_feedback_set(user=user, task=first, rating=-1)  # changed mind
    figures = feedback_by_label(labels=labels)
    assert figures["plan@1"] == {"up": 0, "down": 1} and figures["plan@2"] == {"up": 0, "down": 1}
    assert figures["synthesize@1"] == {"up": 0, "down": 2}
    first_version, second_version = plan_versions
    assert version_feedback(versions=[first_version, second_version]) == {
        first_version.pk: {"up": 0, "down": 1}, second_version.pk: {"up": 0, "down": 1}}


def test_add_a_down_rated_task_to_a_dataset(auth_client, user, other_user, task):
    mine = dataset_create(owner=user, name="regressions")
    theirs = dataset_create(owner=other_user, name="theirs")
    path = url(task) + "/dataset"
    refused = auth_client.post(path, {"dataset": mine.pk}, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_rated_down"
    auth_client.post(url(task), {"rating": "down", "comment": "missed Porto"}, format="json")
    assert auth_client.post(path, {"dataset": theirs.pk}, format="json").status_code == 404
    added = auth_client.post(path, {"dataset": mine.pk, "checks": [{"type": "contains", "value": "Porto"}]},
                             format="json")
    assert added.status_code == 201, added.content
    item = DatasetItem.objects.get()
    assert (item.query, item.source_task_id, item.dataset_id) == (task.query, task.pk, mine.pk)
    assert "missed Porto" in item.note
    again = auth_client.post(path, {"dataset": mine.pk}, format="json")
    assert again.status_code == 409


@pytest.mark.parametrize("checks", [5, "contains", {"type": "contains", "value": "Porto"}])
def test_add_to_dataset_refuses_checks_that_are_not_a_list(auth_client, user, task, checks):
    mine = dataset_create(owner=user, name="regressions")
    auth_client.post(url(task), {"rating": "down"}, format="json")
    response = auth_client.post(url(task) + "/dataset", {"dataset": mine.pk, "checks": checks}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == "checks"
    assert not DatasetItem.objects.exists()
