"""Datasets, items, eval runs and the comparison through the API, as owner, other user,
staff and anonymous."""

from __future__ import annotations

import pytest

from evals.execution import eval_run_work
from evals.models import Dataset, EvalRun
from evals.services import dataset_create, dataset_item_create, eval_run_create

CHECK = {"type": "contains", "value": "s1"}


@pytest.fixture
def dataset(user, plan_versions):
    dataset = dataset_create(owner=user, name="mine", template=plan_versions[0].template)
    dataset_item_create(dataset=dataset, query="What is 2 + 2?", checks=[CHECK])
    return dataset


@pytest.fixture
def runs(dataset, plan_versions, user, settings):
    settings.LLM_PROVIDER = "offline"
    made = [eval_run_create(owner=user, dataset=dataset, version=version, start=False) for version in plan_versions]
    for run in made:
        eval_run_work(run_id=run.pk)
    return made


def client_for(api_client, who):
    if who is not None:
        api_client.force_authenticate(who)
    return api_client


@pytest.mark.parametrize("path", ["/api/v1/datasets", "/api/v1/datasets/1", "/api/v1/evals/runs",
                                  "/api/v1/evals/runs/1", "/api/v1/evals/compare?a=1&b=2"])
def test_anonymous_is_refused_with_the_error_shape(api_client, path):
    response = api_client.get(path)
    assert response.status_code in (401, 403)
    assert set(response.json()["error"]) == {"code", "message", "field"}


def test_owner_creates_a_dataset_and_items(auth_client, plan_versions):
    response = auth_client.post("/api/v1/datasets/", {"name": "plans", "template": "plan"}, format="json")
    assert response.status_code == 201, response.content
    dataset_id = response.json()["id"]
    item = auth_client.post(f"/api/v1/datasets/{dataset_id}/items", {"query": "Plan a trip", "checks": [CHECK]},
                            format="json")
    assert item.status_code == 201 and item.json()["checks"] == [CHECK]
    detail = auth_client.get(f"/api/v1/datasets/{dataset_id}").json()
    assert detail["template"] == "plan" and detail["owner"] == "alice" and len(detail["items"]) == 1
    again = auth_client.post("/api/v1/datasets", {"name": "plans"}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "dataset_exists"


@pytest.mark.parametrize(("body", "field"), [
    ({"query": "q", "checks": [{"type": "regex", "pattern": "(a+)+$"}]}, "checks"),
    ({"query": "q", "checks": [{"type": "telepathy"}]}, "checks"),
    ({"query": "q", "checks": [{"type": []}]}, "checks"),
    ({"query": "q", "checks": [{"type": {"regex": "x"}}]}, "checks"),
    ({"query": "", "variables": {}}, "query"),
    ({"variables": {"nonsense": 1}}, "variables"),
    # Values of the wrong type are refused, not coerced (nor a 500).
    ({"query": "q", "variables": 5}, "variables"),
    ({"query": "q", "variables": "ab"}, "variables"),
    ({"query": "q", "variables": [["query", "x"]]}, "variables"),
    ({"query": "q", "checks": 5}, "checks"),
    ({"query": "q", "checks": "contains"}, "checks"),
    ({"query": "q", "checks": {"type": "contains", "value": "x"}}, "checks"),
])
def test_invalid_items_are_refused_with_the_field(auth_client, dataset, body, field):
    response = auth_client.post(f"/api/v1/datasets/{dataset.pk}/items", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field
    assert dataset.items.count() == 1  # the fixture's only


@pytest.mark.parametrize("item_id", ["9" * 5000, "9" * 20, "0"])
def test_an_item_id_that_is_no_item_is_a_404(auth_client, dataset, item_id):
    path = f"/api/v1/datasets/{dataset.pk}/items/{item_id}"
    for response in (auth_client.patch(path, {"note": "x"}, format="json"), auth_client.delete(path)):
        assert response.status_code == 404, response.content
        assert response.json()["error"]["code"] == "not_found"
    assert dataset.items.count() == 1


def test_an_item_changed_to_a_check_type_that_is_not_a_string_is_refused(auth_client, dataset):
    item = dataset.items.get()
    response = auth_client.patch(f"/api/v1/datasets/{dataset.pk}/items/{item.pk}", {"checks": [{"type": []}]},
                                 format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == "checks"
    assert response.json()["error"]["message"].startswith("check 1: type must be a string: one of contains")
    item.refresh_from_db()
    assert item.checks == [CHECK]


def test_other_user_sees_404_and_shipped_datasets_read_only(api_client, other_user, dataset, plan_dataset):
    client = client_for(api_client, other_user)
    names = [row["name"] for row in client.get("/api/v1/datasets").json()["results"]]
    assert names == ["plan-smoke"]
    for method, path in [("get", f"/api/v1/datasets/{dataset.pk}"), ("patch", f"/api/v1/datasets/{dataset.pk}"),
                         ("delete", f"/api/v1/datasets/{dataset.pk}"),
                         ("post", f"/api/v1/datasets/{dataset.pk}/items"),
                         ("patch", f"/api/v1/datasets/{plan_dataset.pk}"),
                         ("post", f"/api/v1/datasets/{plan_dataset.pk}/items")]:
        response = getattr(client, method)(path, {"query": "x", "name": "x"}, format="json")
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "not_found"
    assert client.get(f"/api/v1/datasets/{plan_dataset.pk}").json()["shipped"] is True
    assert Dataset.objects.get(pk=dataset.pk).name == "mine"


def test_owner_edits_and_deletes_items_and_datasets(auth_client, dataset):
    item = dataset.items.get()
    response = auth_client.patch(f"/api/v1/datasets/{dataset.pk}/items/{item.pk}", {"note": "why"}, format="json")
    assert response.status_code == 200 and response.json()["note"] == "why"
    assert auth_client.delete(f"/api/v1/datasets/{dataset.pk}/items/{item.pk}").status_code == 204
    assert auth_client.patch(f"/api/v1/datasets/{dataset.pk}", {"description": "d"}, format="json").status_code == 200
    assert auth_client.delete(f"/api/v1/datasets/{dataset.pk}").status_code == 204
    assert not Dataset.objects.filter(pk=dataset.pk).exists()


def test_staff_see_every_dataset(api_client, staff_user, dataset, plan_dataset):
    client = client_for(api_client, staff_user)
    assert {row["name"] for row in client.get("/api/v1/datasets").json()["results"]} == {"mine", "plan-smoke"}
    assert client.patch(f"/api/v1/datasets/{plan_dataset.pk}", {"description": "edited"},
                        format="json").status_code == 200


def test_owner_starts_a_run_which_is_enqueued_after_commit(auth_client, dataset, monkeypatch,
                                                          django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr("evals.jobs.run_eval.delay", lambda run_id: sent.append(run_id))
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post("/api/v1/evals/runs", {"dataset": dataset.pk, "prompt": "plan", "version": 1},
                                    format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["total"], body["done"], body["progress"]) == ("queued", 1, 0, 0.0)
    assert sent == [body["id"]]  # one job: one item


def test_run_for_missing_version_or_foreign_dataset(api_client, other_user, dataset):
    client = client_for(api_client, other_user)
    foreign = client.post("/api/v1/evals/runs", {"dataset": dataset.pk, "prompt": "plan", "version": 1},
                          format="json")
    assert foreign.status_code == 404
    client.force_authenticate(dataset.owner)
    missing = client.post("/api/v1/evals/runs", {"dataset": dataset.pk, "prompt": "plan", "version": 99},
                          format="json")
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "version"
    assert not EvalRun.objects.exists()


def test_runs_results_and_comparison_are_owner_scoped(api_client, user, other_user, staff_user, runs):
    a, b = runs
    client = client_for(api_client, user)
    assert [row["id"] for row in client.get("/api/v1/evals/runs").json()["results"]] == [b.pk, a.pk]
    detail = client.get(f"/api/v1/evals/runs/{a.pk}").json()
    assert detail["status"] == "completed" and detail["version"] == "plan@1" and detail["progress"] == 1.0
    [result] = client.get(f"/api/v1/evals/runs/{a.pk}/results").json()
    assert result["checks"][0]["type"] == "contains" and result["tokens_out"] > 0
    compared = client.get(f"/api/v1/evals/compare?a={a.pk}&b={b.pk}").json()
    assert compared["a"]["version"] == "plan@1" and compared["b"]["version"] == "plan@2"
    assert compared["items"][0]["summary"] == "What is 2 + 2?"
    client.force_authenticate(other_user)
    for path in [f"/api/v1/evals/runs/{a.pk}", f"/api/v1/evals/runs/{a.pk}/results",
                 f"/api/v1/evals/compare?a={a.pk}&b={b.pk}"]:
        assert client.get(path).status_code == 404
    assert client.get("/api/v1/evals/runs").json()["results"] == []
    client.force_authenticate(staff_user)
    assert client.get(f"/api/v1/evals/runs/{a.pk}").status_code == 200
