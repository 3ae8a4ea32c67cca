"""The runner's contract: every action ends as a committed step, whatever executing it raised."""

from __future__ import annotations

import pytest

from tasks.runner import run_slice
from tasks.services import task_create
from tasks.tests.waiting import assert_contiguous

pytestmark = pytest.mark.django_db


class BrokenProvider:
    def complete(self, request):
        raise RuntimeError("boom\nsecond line")


def test_an_unexpected_exception_becomes_an_error_step_and_the_task_stops_with_a_reason(
        agents_defaults, user, monkeypatch):
    import tasks.execution

    monkeypatch.setattr(tasks.execution, "get_provider", BrokenProvider)
    task = task_create(owner=user, query="compute 12 * 7")
    for _ in range(20):
        if run_slice(task.id, worker_id="w1").outcome != "continue":
            break
    task.refresh_from_db()
    steps = assert_contiguous(task)
    plan = steps[1]
    assert (plan.kind, plan.status, plan.error) == ("plan", "error", "internal_error: RuntimeError: boom")
    assert task.status == "failed" and task.error, "the task does not stay running without a visible reason"
    assert task.lease_owner is None


@pytest.mark.parametrize("body, reason", [
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}{{ query }}", "recursion too deep"),
    ("{{ query * 10**10 }}", "a value would be longer than 1,000,000 characters"),
])
def test_a_prompt_past_the_sandbox_limits_becomes_an_error_step_with_its_reason(agents_defaults, user, body, reason):
    from prompts.models import PromptTemplate
    from prompts.services import prompt_version_create

    version = prompt_version_create(template=PromptTemplate.objects.get(slug="plan"), body=body, activate=True)
    task = task_create(owner=user, query="compute 12 * 7")
    _run_until_stopped(task)
    plan = assert_contiguous(task)[1]
    assert (plan.kind, plan.status) == ("plan", "error")
    assert plan.error.startswith(f"prompt {version.label}: ") and reason in plan.error and "\n" not in plan.error
    assert task.status == "failed"


def test_a_running_rollout_serves_its_candidate_to_the_tasks_in_its_share(agents_defaults, user):
    """Weighted rollout reaches the runner: with the candidate at 100 % every plan step of a
    new task renders the candidate; once the rollout is stopped, the active version again."""
    from django.db import transaction

    from prompts.models import PromptTemplate
    from prompts.rollouts import prompt_rollout_start, prompt_rollout_stop
    from prompts.services import prompt_version_create

    template = PromptTemplate.objects.get(slug="plan")
    active = template.versions.get(is_active=True)
    candidate = prompt_version_create(template=template, body=active.body + "\n", note="candidate")
    with transaction.atomic():
        rollout = prompt_rollout_start(candidate=candidate, weight=100)

    def plan_label(query: str) -> str:
        task = task_create(owner=user, query=query)
        run_slice(task.id, worker_id="w1")
        return task.steps.get(kind="plan").prompt_label

    assert plan_label("compute 12 * 7") == f"plan@{candidate.number}"
    with transaction.atomic():
        prompt_rollout_stop(rollout=rollout, reason="enough")
    assert plan_label("compute 3 * 4") == f"plan@{active.number}"


def _run_until_stopped(task, limit: int = 30) -> str:
    outcome = ""
    for _ in range(limit):
        outcome = run_slice(task.id, worker_id="w1").outcome
        if outcome != "continue":
            break
    task.refresh_from_db()
    return outcome


@pytest.mark.django_db(transaction=True)  # the runner commits each step by itself (autocommit), as in a worker
def test_a_step_the_database_refuses_becomes_an_internal_error_step(agents_defaults, user, monkeypatch):
    """A tool result PostgreSQL cannot store (a NUL character in jsonb) is replaced by an
    internal_error step of the same call; the model sees it and the task goes on."""
    import tools.dispatch
    from tools.dispatch import ToolOutcome

    real = tools.dispatch.dispatch
    calls = []

    def nul_result(*, name, arguments, **kwargs):
        calls.append(name)
        if len(calls) == 1:
            return ToolOutcome(ok=True, result={"text": "bad \u0000 byte"}, error=None, error_code=None, duration_ms=1)
        return real(name=name, arguments=arguments, **kwargs)

    monkeypatch.setattr("tasks.execution.dispatch", nul_result)
    task = task_create(owner=user, query="compute 12 * 7")
    _run_until_stopped(task)
    steps = assert_contiguous(task)
    tool = next(s for s in steps if s.kind == "tool")
    assert tool.status == "error" and tool.error.startswith("internal_error: ")
    assert task.status == "completed", task.error


def test_a_bug_in_the_loop_fails_the_task_with_an_internal_error(agents_defaults, user, monkeypatch):
    def broken(state):
        raise KeyError("no such subtask")

    monkeypatch.setattr("tasks.runner.decide", broken)
    task = task_create(owner=user, query="compute 12 * 7")
    assert run_slice(task.id, worker_id="w1").outcome == "internal_error"
    task.refresh_from_db()
    steps = assert_contiguous(task)
    assert task.status == "failed" and task.error == "internal_error: KeyError: 'no such subtask'"
    assert steps[-1].kind == "error" and task.lease_owner is None
    assert task.steps.count() == 2


class FlakyProvider:
    """Raises the queued errors, then answers like the offline provider."""

    errors: list = []

    def complete(self, request):
        from agentos.llm.offline import OfflineProvider

        if self.errors:
            raise self.errors.pop(0)
        return OfflineProvider(model="offline").complete(request)


def test_transient_errors_wait_and_configuration_errors_pause(agents_defaults, user, monkeypatch, settings,
                                                              django_capture_on_commit_callbacks):
    from agentos.llm import LLMAuthError, LLMRateLimited
    from tasks.services import task_resume

    error = LLMRateLimited("HTTP 429 rate limited", retry_after=7.0, status=429)
    error.tokens_in, error.tokens_estimated = 5, True
    FlakyProvider.errors = [error, LLMAuthError("HTTP 401 authentication failed", status=401)]
    monkeypatch.setattr("tasks.execution.get_provider", FlakyProvider)
    delays = []
    monkeypatch.setattr("tasks.services.enqueue", lambda task_id, countdown=None: delays.append(countdown))
    task = task_create(owner=user, query="compute 12 * 7")
    events = []
    monkeypatch.setattr("tasks.live.publish", lambda task_id, event: events.append(event))

    with django_capture_on_commit_callbacks(execute=True):
        assert run_slice(task.id, worker_id="w1").outcome == "waiting_provider"
    # The websocket and SSE see the waiting state with the step that caused it.
    shown = events[-1]["task"]
    assert events[-1]["step"]["kind"] == "provider_wait" and shown["status"] == "waiting_provider"
    assert shown["provider_error"]["message"].startswith("waiting for the model provider (rate_limited), next try at")
    task.refresh_from_db()
    wait = task.steps.order_by("-index").first()
    assert task.status == "waiting_provider" and wait.kind == "provider_wait"
    assert wait.error.startswith("rate_limited: ") and (wait.tokens_in, wait.tokens_estimated) == (5, True)
    assert 7.0 <= delays[-1] <= settings.LLM_OUTAGE_MAX_SECONDS  # the server's Retry-After is honoured
    assert task.provider_error["code"] == "rate_limited" and task.enqueued_at > wait.created_at

    assert run_slice(task.id, worker_id="w1").outcome == "paused"
    task.refresh_from_db()
    pause = task.steps.order_by("-index").first()
    assert (task.status, pause.kind, pause.status) == ("paused", "pause", "error")
    assert task.provider_error["kind"] == "configuration" and task.provider_error["code"] == "auth_error"
    assert not task.steps.filter(kind__in=["plan", "llm"], status="error").exists(), "no model error counted"

    task_resume(task=task)
    assert task.provider_error is None
    assert _run_until_stopped(task) == "finished" and task.status == "completed"


def test_an_outage_longer_than_the_ceiling_fails_the_task_and_retry_continues_it(
        agents_defaults, user, monkeypatch, settings):
    from agentos.api import Conflict
    from agentos.llm import LLMServerError
    from tasks.services import task_retry

    settings.LLM_OUTAGE_MAX_SECONDS = 0
    FlakyProvider.errors = [LLMServerError("HTTP 503: down", status=503, retry_after=1.0)]
    monkeypatch.setattr("tasks.execution.get_provider", FlakyProvider)
    monkeypatch.setattr("tasks.services.enqueue", lambda task_id, countdown=None: None)
    task = task_create(owner=user, query="compute 12 * 7")
    run_slice(task.id, worker_id="w1")
    task.refresh_from_db()
    assert task.status == "failed" and task.error.startswith("server_error: ")
    assert "LLM_OUTAGE_MAX_SECONDS" in task.error and task.provider_error["code"] == "server_error"

    task_retry(task=task)
    assert (task.status, task.error, task.finished_at) == ("queued", "", None)
    assert _run_until_stopped(task) == "finished" and task.status == "completed"
    kinds = [s.kind for s in assert_contiguous(task)]
    assert kinds[:4] == ["trigger", "error", "retry", "plan"] and kinds[-1] == "result"
    with pytest.raises(Conflict):
        task_retry(task=task)


@pytest.mark.parametrize("allow_human", [True, False])
def test_the_agent_prompt_offers_only_the_forms_its_schema_allows(agents_defaults, user, allow_human):
    from tasks.context import messages_for_step

    task = task_create(owner=user, query="Research the history of PostgreSQL and compute the average of 12, 15 "
                                         "and 30", options={"allow_human": allow_human})
    _run_until_stopped(task)
    prompts = {step.agent: messages_for_step(step)[0]["content"] for step in task.steps.filter(kind="llm")}
    form = '{"action": "ask_human"'
    assert {"research", "analysis"} <= set(prompts)
    # research may ask a person (its tools include ask_human) only when the task allows one;
    # analysis never may.
    assert (form in prompts["research"]) is allow_human and form not in prompts["analysis"]
    assert '{"action": "finish"' in prompts["analysis"]
