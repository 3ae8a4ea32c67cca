"""Eval runs of two versions of plan over the shipped dataset, against the loopback
OpenAI-compatible server: different pass rates, per-item verdicts, tokens, progress."""

from __future__ import annotations

import time

import pytest

from agentos.llm.fake_server import FakeLLMServer, chat_completion
from evals.execution import eval_run_work
from evals.models import EvalResult, EvalRun
from evals.report import text_table
from evals.selectors import compare_runs
from evals.services import dataset_create, dataset_item_create, eval_run_create
from evals.tests.conftest import MARKER_B, plan_json


def run_inline(dataset, version):
    run = eval_run_create(owner=None, dataset=dataset, version=version, start=False)
    assert eval_run_work(run_id=run.pk) == 5
    run.refresh_from_db()
    return run


def test_two_versions_of_plan_get_different_pass_rates(plan_server, plan_dataset, plan_versions):
    first, second = plan_versions
    a, b = run_inline(plan_dataset, first), run_inline(plan_dataset, second)
    assert (a.status, a.done, a.passed, a.errors) == ("completed", 5, 5, 0)
    assert (b.status, b.done, b.passed) == ("completed", 5, 3)
    assert a.pass_rate == 1.0 and b.pass_rate == 0.6
    # Tokens and latency come from the provider's answers.
    assert b.tokens_in == 5 * 150 and a.tokens_in == 5 * 100
    assert all(result.latency_ms >= 0 and result.tokens_out > 0 for result in b.results.all())
    # Every request went through HTTP with the version's own rendered body; the rubric was graded by the model.
    bodies = [r["body"] for r in plan_server.requests if r["body"]["response_format"]["json_schema"]["name"] == "plan"]
    assert sum(MARKER_B in body["messages"][0]["content"] for body in bodies) == 5
    graded = [r for r in plan_server.requests if r["body"]["response_format"]["json_schema"]["name"] == "eval_rubric"]
    assert len(graded) == 2
    differing = [row for row in compare_runs(a=a, b=b) if row.differs]
    assert [row.summary for row in differing] == ["What is 17 multiplied by 23?", "Write a haiku about autumn rain."]
    failing = differing[0].b.checks
    assert failing[0] == {"type": "numeric", "verdict": "fail", "message": "$.subtasks.length() is 3 (want 1 ± 0)"}
    table = text_table([a, b])
    assert "plan@1: pass rate 100% (5/5)" in table and "plan@2: pass rate 60% (3/5)" in table


def test_rubric_is_skipped_with_a_note_on_the_offline_provider(plan_dataset, plan_versions, settings):
    settings.LLM_PROVIDER = "offline"
    run = run_inline(plan_dataset, plan_versions[0])
    rubric = [check for result in run.results.all() for check in result.checks if check["type"] == "rubric"]
    assert rubric and rubric[0]["verdict"] == "skipped" and "offline provider" in rubric[0]["message"]
    assert run.provider == "offline" and run.done == 5


def test_invalid_model_output_is_an_item_error_with_its_checks(plan_versions, settings, user):
    dataset = dataset_create(owner=user, name="one")
    dataset_item_create(dataset=dataset, query="Say hi", checks=[{"type": "contains", "value": "hello"}])
    with FakeLLMServer() as server:
        server.queue(chat_completion("hello, not JSON"))
        settings.LLM_PROVIDER, settings.OPENAI_API_KEY = "openai", "k"
        settings.OPENAI_BASE_URL, settings.LLM_MAX_RETRIES = server.url + "/v1", 0
        run = eval_run_create(owner=user, dataset=dataset, version=plan_versions[0], start=False)
        eval_run_work(run_id=run.pk)
    run.refresh_from_db()
    [result] = run.results.all()
    assert (run.done, run.passed, run.errors) == (1, 0, 1)
    assert result.status == "error" and result.error.startswith("invalid_output")
    assert result.checks == [{"type": "contains", "verdict": "pass", "message": "'hello' found"}]


def run_one_item(*, user, version, settings, reply, checks) -> tuple[EvalRun, EvalResult]:
    """One item evaluated with ``reply`` as the model's answer."""
    dataset = dataset_create(owner=user, name="one")
    dataset_item_create(dataset=dataset, query="Say hi", checks=checks)
    with FakeLLMServer() as server:
        server.queue(reply)
        settings.LLM_PROVIDER, settings.OPENAI_API_KEY = "openai", "k"
        settings.OPENAI_BASE_URL, settings.LLM_MAX_RETRIES = server.url + "/v1", 0
        run = eval_run_create(owner=user, dataset=dataset, version=version, start=False)
        assert eval_run_work(run_id=run.pk) == 1
    run.refresh_from_db()
    return run, run.results.get()


@pytest.mark.parametrize(("content", "status"), [
    (plan_json([("research", "Find\u0000 it")]), "done"),  # JSON: a NUL in the output's data
    ("hello\x00 not JSON", "error"),  # invalid output: a NUL in its text
])
def test_a_nul_in_the_model_output_is_stored_and_the_run_completes(plan_versions, settings, user, content, status):
    run, result = run_one_item(user=user, version=plan_versions[0], settings=settings,
                               reply=chat_completion(content), checks=[{"type": "contains", "value": "o"}])
    assert (run.status, run.done, run.total) == ("completed", 1, 1)
    assert result.status == status and result.finished_at is not None
    assert result.checks == [{"type": "contains", "verdict": "pass", "message": "'o' found"}]
    if status == "done":  # PostgreSQL's JSON refuses \u0000: the character is stored as U+FFFD
        assert result.output["subtasks"][0]["description"] == "Find\ufffd it" and result.passed
    else:
        assert result.text == "hello\ufffd not JSON"


def test_a_result_the_database_refuses_is_an_item_error_that_says_why(plan_versions, settings, user):
    # A provider's usage out of the column's range: PostgreSQL refuses the row.
    run, result = run_one_item(user=user, version=plan_versions[0], settings=settings,
                               reply=chat_completion(plan_json([("research", "Hi")]), prompt_tokens=2**31),
                               checks=[{"type": "contains", "value": "Hi"}])
    assert (run.status, run.done, run.passed, run.errors) == ("completed", 1, 0, 1)
    assert (result.status, result.passed, result.tokens_in, result.checks) == ("error", False, 0, [])
    assert result.error.startswith("result_not_saved: DataError: integer out of range"), result.error
    assert "\n" not in result.error


def test_a_check_that_times_out_fails_its_item_visibly_and_the_run_completes(plan_versions, settings, user):
    settings.EVAL_CHECK_TIMEOUT_SECONDS = 0.5
    check = {"type": "regex", "pattern": r"(.|\s)*END", "path": "$.subtasks[0].description"}
    run, result = run_one_item(user=user, version=plan_versions[0], settings=settings,
                               reply=chat_completion(plan_json([("research", " " * 26)])),
                               checks=[check, {"type": "contains", "value": "research"}])
    assert (run.status, run.done, run.passed) == ("completed", 1, 0)
    assert (result.status, result.passed) == ("done", False)
    assert result.checks[0]["verdict"] == "error"
    assert result.checks[0]["message"].startswith("timed out: the check did not finish within 0.5 s")
    assert result.checks[1]["verdict"] == "pass"


def test_concurrency_is_bounded_by_the_setting_and_the_items(plan_dataset, plan_versions, settings):
    settings.EVAL_CONCURRENCY = 3
    assert eval_run_create(owner=None, dataset=plan_dataset, version=plan_versions[0], concurrency=10,
                           start=False).concurrency == 3
    settings.EVAL_CONCURRENCY = 64
    assert eval_run_create(owner=None, dataset=plan_dataset, version=plan_versions[0], concurrency=10,
                           start=False).concurrency == 5


def test_a_second_worker_finds_nothing_to_do(plan_dataset, plan_versions, settings):
    settings.LLM_PROVIDER = "offline"
    run = eval_run_create(owner=None, dataset=plan_dataset, version=plan_versions[0], start=False)
    assert eval_run_work(run_id=run.pk) == 5
    assert eval_run_work(run_id=run.pk) == 0
    assert EvalResult.objects.filter(run=run, status="done").count() == 5


@pytest.mark.slow
def test_celery_workers_run_an_eval_with_live_progress(make_worker, plan_versions, user, settings):
    """The API starts the run; a real worker process evaluates it against the loopback server."""
    from rest_framework.test import APIClient

    from evals.defaults import load_dataset
    from evals.tests.conftest import PlanServer
    from prompts.models import PromptVersion

    load_dataset("plan-smoke")
    settings.EVAL_CONCURRENCY = 2
    with PlanServer() as server:
        server.delay_s = 0.2
        make_worker(LLM_PROVIDER="openai", OPENAI_API_KEY="k", OPENAI_BASE_URL=server.url + "/v1",
                    LLM_MAX_RETRIES="0")
        client = APIClient()
        client.force_authenticate(user)
        dataset_id = client.get("/api/v1/datasets").json()["results"][0]["id"]
        assert PromptVersion.objects.filter(template__slug="plan").count() == 2
        response = client.post("/api/v1/evals/runs", {"dataset": dataset_id, "prompt": "plan", "version": 2},
                               format="json")
        assert response.status_code == 201, response.content
        run_id, seen = response.json()["id"], set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            body = client.get(f"/api/v1/evals/runs/{run_id}").json()
            seen.add(body["done"])
            if body["status"] == "completed":
                break
            time.sleep(0.05)
    assert body["status"] == "completed" and body["progress"] == 1.0, body
    assert (body["passed"], body["pass_rate"], body["concurrency"]) == (3, 0.6, 2)
    assert EvalRun.objects.get(pk=run_id).results.filter(status="done").count() == 5
    assert max(seen) == 5 and len(seen) >= 3  # progress was seen moving, not only at the end
    # Two jobs for this run, although the worker has 8 threads: never more than two calls at once.
    assert server.max_in_flight == 2
