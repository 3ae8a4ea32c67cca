"""The eval pages and the feedback form, as owner, other user and anonymous."""

from __future__ import annotations

import re

import pytest

from evals.execution import eval_run_work
from evals.models import DatasetItem, EvalRun, TaskFeedback
from evals.services import dataset_create, eval_run_create
from evals.tests.test_feedback import make_task


@pytest.fixture
def compared(plan_server, plan_dataset, plan_versions, user):
    runs = [eval_run_create(owner=user, dataset=plan_dataset, version=version, start=False)
            for version in plan_versions]
    for run in runs:
        eval_run_work(run_id=run.pk)
    return runs


def no_inline_code(html: str) -> None:
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) and " style=" not in html


def test_comparison_page_shows_both_pass_rates_and_the_differing_items(client, user, compared):
    a, b = compared
    client.force_login(user)
    response = client.get(f"/evals/compare/?a={a.pk}&b={b.pk}")
    assert response.status_code == 200
    html = response.content.decode()
    summary = html[html.index('id="compare-summary"'):html.index('id="compare-items"')]
    assert re.findall(r'class="pass-rate">([^<]+)<', summary) == ["100% (5/5)", "60% (3/5)"]
    assert "2 items have a different verdict." in html
    items = html[html.index('id="compare-items"'):]
    # Items whose verdict differs come first and are marked.
    assert items.index("What is 17 multiplied by 23?") < items.index("Compare the population growth")
    assert items.count('class="active differs"') == 2
    no_inline_code(html)


def test_run_page_shows_results_and_polls_only_while_running(client, user, compared, plan_dataset, plan_versions):
    client.force_login(user)
    html = client.get(f"/evals/runs/{compared[1].pk}/").content.decode()
    assert "60% (3/5)" in html and "$.subtasks.length() is 3 (want 1 ± 0)" in html
    assert "evals/run.js" not in html
    pending = eval_run_create(owner=user, dataset=plan_dataset, version=plan_versions[0], start=False)
    html = client.get(f"/evals/runs/{pending.pk}/").content.decode()
    assert "evals/run.js" in html and f'data-eval-run="/api/v1/evals/runs/{pending.pk}' in html
    no_inline_code(html)


def test_other_user_and_anonymous_cannot_see_runs(client, other_user, compared):
    a, b = compared
    for path in [f"/evals/runs/{a.pk}/", f"/evals/compare/?a={a.pk}&b={b.pk}"]:
        assert client.get(path).status_code == 302  # to the login page
        client.force_login(other_user)
        assert client.get(path).status_code == 404
        client.logout()
    client.force_login(other_user)
    assert f"#{a.pk}" not in client.get("/evals/").content.decode()


def test_evals_page_starts_a_run(client, user, plan_dataset, plan_versions, monkeypatch,
                                 django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr("evals.jobs.run_eval.delay", lambda run_id: sent.append(run_id))
    client.force_login(user)
    page = client.get("/evals/").content.decode()
    assert "plan-smoke" in page and "plan@2" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/evals/", {"dataset": plan_dataset.pk, "version": plan_versions[1].pk})
    run = EvalRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/evals/runs/{run.pk}/"
    assert (run.owner, run.version, run.total) == (user, plan_versions[1], 5) and len(sent) == run.concurrency


def test_feedback_page_rates_edits_and_adds_to_a_dataset(client, user, other_user):
    task = make_task(user)
    dataset = dataset_create(owner=user, name="regressions")
    path = f"/evals/tasks/{task.pk}/feedback"
    assert client.get(path).status_code == 302
    client.force_login(other_user)
    assert client.get(path).status_code == 404
    assert client.post(path, {"rating": "up"}).status_code == 404
    client.force_login(user)
    assert client.post(path, {"rating": "up", "comment": "good"}).status_code == 302
    assert TaskFeedback.objects.get().rating == 1
    assert "Add to a dataset" not in client.get(path).content.decode()
    client.post(path, {"rating": "down", "comment": "missed Porto"})
    feedback = TaskFeedback.objects.get()
    assert (feedback.rating, feedback.comment) == (-1, "missed Porto")
    html = client.get(path).content.decode()
    assert "Add to a dataset" in html
    no_inline_code(html)
    assert client.post(path, {"action": "add", "dataset": dataset.pk}).status_code == 302
    assert DatasetItem.objects.get().source_task_id == task.pk
