"""Time travel: export -> import -> replay, forks at a question and at a model step, and
side effects of the copied part never repeated (the memory tool's idempotency key)."""

from __future__ import annotations

import pytest

from agentos.api import ApplicationError, NotFound
from memory.models import MemoryEntry
from tasks.models import Step
from tasks.runner import run_slice
from tasks.services import task_create, task_respond
from tasks.timetravel.export import task_export, task_import
from tasks.timetravel.fork import task_fork
from tasks.timetravel.replay import replay_document

pytestmark = pytest.mark.django_db

# The offline rule set plans two subtasks: the synthesis agent stores a note (memory_store,
# a side effect), the research agent asks the person to confirm.
QUERY = "Write a note to remember that the launch moves to Friday, then confirm the new date with me"
RECORD = ("index", "kind", "agent", "subtask_id", "status", "input", "output", "error", "prompt_label", "context",
          "context_hash", "tokens_in", "tokens_out", "duration_ms", "created_at")


def run(task, answer: str | None = None):
    for _ in range(40):
        if run_slice(task.id, worker_id="w1").outcome != "continue":
            break
    task.refresh_from_db()
    if answer is not None and task.status == "waiting_human":
        task_respond(task=task, answer=answer)
        return run(task)
    return task


def rows(task) -> list[tuple]:
    return [tuple(getattr(step, name) for name in RECORD) for step in Step.objects.filter(task=task).order_by("index")]


def run_part(document: dict) -> dict:
    """The document without ``source`` (which describes the copy, not the run)."""
    return {key: value for key, value in document.items() if key != "source"}


@pytest.fixture
def finished(agents_defaults, user):
    task = run(task_create(owner=user, query=QUERY), answer="yes, Friday")
    assert task.status == "completed", task.error
    return task


def memory_step(task) -> Step:
    step = Step.objects.get(task=task, kind="tool", input__tool="memory_store")
    assert step.status == "ok", step.error
    return step


def question_step(task) -> Step:
    return Step.objects.get(task=task, kind="human_request")


def test_export_import_round_trip_and_replay_reports_no_divergence(finished, other_user):
    document = task_export(task=finished)
    assert replay_document(document).divergence is None
    imported = task_import(owner=other_user, document=document)
    assert (imported.owner, imported.status, imported.result) == (other_user, "completed", finished.result)
    assert imported.imported_at is not None and imported.enqueued_at is None
    assert rows(imported) == rows(finished)  # same prompt versions here: matched by content
    again = task_export(task=imported)
    assert run_part(again) == run_part(document)
    report = replay_document(again)
    assert (report.divergence, report.steps) == (None, finished.step_count)
    assert report.decisions == finished.step_count - 1  # every step after the trigger


def test_import_reuses_prompt_versions_with_the_same_content_and_counts_no_use(finished, other_user):
    from prompts.models import PromptVersion

    before = {v.pk: (v.uses, v.is_active) for v in PromptVersion.objects.all()}
    imported = task_import(owner=other_user, document=task_export(task=finished))
    assert {v.pk: (v.uses, v.is_active) for v in PromptVersion.objects.all()} == before
    plan = Step.objects.get(task=imported, kind="plan")
    assert plan.context["version_id"] == Step.objects.get(task=finished, kind="plan").context["version_id"]


def test_import_creates_a_missing_prompt_version_without_activating_it(finished, other_user):
    from prompts.models import PromptVersion
    from workspaces.models import Membership, Workspace

    # Only someone who may edit prompts adds to the shared catalog: a prompt editor of a team.
    Membership.objects.create(workspace=Workspace.objects.create(name="Prompts", slug="prompts"), user=other_user,
                              role="prompt_editor")
    document = task_export(task=finished)
    plan = next(p for p in document["prompts"] if p["slug"] == "plan")
    plan["body"] += "\nAn older wording."
    count = PromptVersion.objects.filter(template__slug="plan").count()
    imported = task_import(owner=other_user, document=document)
    created = PromptVersion.objects.get(template__slug="plan", body=plan["body"])
    assert PromptVersion.objects.filter(template__slug="plan").count() == count + 1
    assert not created.is_active and created.uses == 0
    assert Step.objects.get(task=imported, kind="plan").prompt_label == created.label


def test_a_refused_import_writes_nothing(finished, other_user):
    from prompts.models import PromptVersion
    from tasks.models import Task

    document = task_export(task=finished)
    next(p for p in document["prompts"] if p["slug"] == "plan")["body"] += "\nA new version {{ nope"
    tasks, versions = Task.objects.count(), PromptVersion.objects.count()
    with pytest.raises(ApplicationError) as caught:
        task_import(owner=other_user, document=document)
    assert caught.value.field.startswith("prompts[")
    assert (Task.objects.count(), PromptVersion.objects.count()) == (tasks, versions)


def test_fork_at_the_question_with_another_answer_completes_differently(finished):
    question = question_step(finished)
    fork = task_fork(task=finished, user=finished.owner, at=question.index, answer="no, keep Thursday")
    assert (fork.forked_from_id, fork.forked_at_step, fork.status) == (finished.pk, question.index, "queued")
    assert fork.fork_edit["kind"] == "answer" and fork.fork_edit["original"] == "yes, Friday"
    fork = run(fork)
    assert fork.status == "completed"
    assert "keep Thursday" in fork.result and "keep Thursday" not in finished.result
    copied = rows(fork)[: question.index + 1]
    assert copied == rows(finished)[: question.index + 1]
    answer = Step.objects.get(task=fork, index=question.index + 1)
    assert (answer.kind, answer.input["answer"]) == ("human_response", "no, keep Thursday")
    assert replay_document(task_export(task=fork)).divergence is None


def test_fork_at_a_question_without_an_answer_waits_for_one(finished):
    question = question_step(finished)
    fork = task_fork(task=finished, user=finished.owner, at=question.index)
    assert fork.status == "waiting_human" and fork.waiting_for["step"] == question.index
    fork = run(fork, answer="maybe")
    assert fork.status == "completed" and "maybe" in fork.result


# memory_store runs on a tool thread, with its own connection: it must see committed rows.
@pytest.mark.django_db(transaction=True)
def test_a_fork_never_repeats_a_side_effect_of_the_copied_part(finished):
    stored = memory_step(finished)
    key = f"{finished.pk}:{stored.index}"
    assert stored.input["idempotency_key"] == key
    assert MemoryEntry.objects.filter(idempotency_key=key).count() == 1
    fork = run(task_fork(task=finished, user=finished.owner, at=question_step(finished).index, answer="no"))
    assert fork.status == "completed"
    assert memory_step(fork).input["idempotency_key"] == key  # the copied record, not a new call
    assert not MemoryEntry.objects.filter(idempotency_key__startswith=f"{fork.pk}:").exclude(
        idempotency_key=f"{fork.pk}:result").exists()
    assert MemoryEntry.objects.filter(idempotency_key=key).count() == 1


# memory_store runs on a tool thread, with its own connection: it must see committed rows.
@pytest.mark.django_db(transaction=True)
def test_a_fork_before_the_side_effect_makes_its_own_call_with_its_own_key(finished):
    stored = memory_step(finished)
    fork = run(task_fork(task=finished, user=finished.owner, at=stored.index - 1), answer="yes")
    assert fork.status == "completed"
    again = memory_step(fork)
    assert again.index == stored.index and again.input["idempotency_key"] == f"{fork.pk}:{stored.index}"
    assert MemoryEntry.objects.filter(idempotency_key=f"{fork.pk}:{stored.index}").count() == 1
    assert MemoryEntry.objects.filter(idempotency_key=f"{finished.pk}:{stored.index}").count() == 1


def test_fork_at_a_model_step_with_an_edited_output(finished):
    decision = Step.objects.filter(task=finished, kind="llm", output__action="finish").order_by("index").first()
    edited = {"action": "finish", "result": "Corrected by a reviewer."}
    fork = run(task_fork(task=finished, user=finished.owner, at=decision.index, output=edited), answer="yes")
    assert fork.status == "completed" and "Corrected by a reviewer." in fork.result
    assert fork.fork_edit["kind"] == "output" and fork.fork_edit["original"] == decision.output
    step = Step.objects.get(task=fork, index=decision.index)
    assert (step.output, step.prompt_label, step.context) == (edited, decision.prompt_label, decision.context)
    assert rows(fork)[: decision.index] == rows(finished)[: decision.index]


def test_an_edited_output_the_runner_would_refuse_is_refused(finished):
    decision = Step.objects.filter(task=finished, kind="llm").order_by("index").first()
    with pytest.raises(ApplicationError) as caught:
        task_fork(task=finished, user=finished.owner, at=decision.index, output={"action": "dance"})
    assert (caught.value.field, caught.value.code) == ("output", "invalid_output")
    with pytest.raises(ApplicationError) as caught:
        task_fork(task=finished, user=finished.owner, at=0, output={"action": "finish", "result": "x"})
    assert caught.value.field == "at"


def test_fork_refuses_other_users_bad_indexes_and_finished_logs(finished, other_user):
    with pytest.raises(NotFound):
        task_fork(task=finished, user=other_user, at=1)
    for at in (-1, finished.step_count, "1", True):
        with pytest.raises(ApplicationError) as caught:
            task_fork(task=finished, user=finished.owner, at=at)
        assert caught.value.field == "at"
    with pytest.raises(ApplicationError) as caught:
        task_fork(task=finished, user=finished.owner, at=finished.step_count - 1)
    assert caught.value.code == "nothing_to_continue"
    with pytest.raises(ApplicationError) as caught:
        task_fork(task=finished, user=finished.owner, at=1, answer="yes")
    assert caught.value.field == "answer"


def test_replay_reports_the_first_step_whose_decision_differs(finished):
    document = task_export(task=finished)
    tool = next(step for step in document["steps"] if step["kind"] == "tool")
    tool["input"]["arguments"] = {"content": "something else"}
    report = replay_document(document)
    assert report.divergence.index == tool["index"]
    assert report.divergence.decided["action"] == "RunTool"
    assert report.divergence.recorded["input"]["arguments"] == {"content": "something else"}
    assert "arguments" in report.divergence.reason


@pytest.mark.django_db(transaction=True)
def test_a_fork_runs_on_through_a_real_worker(agents_defaults, user, worker):
    """The fork is queued after its commit and a Celery worker runs it like any task."""
    from tasks.tests.waiting import wait_status

    # The worker runs the original too (running slices here as well would race it for the lease).
    original = wait_status(task_create(owner=user, query=QUERY), "waiting_human", "completed", "failed", timeout=60)
    assert original.status == "waiting_human", original.error
    task_respond(task=original, answer="yes")
    wait_status(original, "completed", "failed", timeout=60)
    assert original.status == "completed", original.error
    fork = task_fork(task=original, user=user, at=question_step(original).index, answer="ask again next week")
    wait_status(fork, "completed", "failed", timeout=60)
    assert fork.status == "completed" and "ask again next week" in fork.result
    assert fork.lease_owner is None


def test_provider_model_and_cost_survive_export_and_import(finished, other_user):
    from decimal import Decimal

    plan = Step.objects.get(task=finished, kind="plan")
    Step.objects.filter(pk=plan.pk).update(provider="openai", model="gpt-test", tokens_cached=7,
                                           cost_usd=Decimal("0.00125"))
    document = task_export(task=finished)
    exported = document["steps"][plan.index]
    assert (exported["provider"], exported["model"], exported["tokens_cached"], exported["cost_usd"]) == (
        "openai", "gpt-test", 7, "0.00125")
    imported = task_import(owner=other_user, document=document)
    copy = Step.objects.get(task=imported, index=plan.index)
    assert (copy.provider, copy.model, copy.tokens_cached, copy.cost_usd) == ("openai", "gpt-test", 7,
                                                                             Decimal("0.00125"))
    imported.refresh_from_db()
    assert imported.cost_usd == Decimal("0.00125")  # the run's cost as recorded: the sum of its steps'


@pytest.mark.parametrize("value", ["-1", "1e3", "12345678.1", "0.123456789", 0.5, "NaN"])
def test_an_import_refuses_a_malformed_cost(finished, other_user, value):
    document = task_export(task=finished)
    document["steps"][1]["cost_usd"] = value
    with pytest.raises(ApplicationError) as error:
        task_import(owner=other_user, document=document)
    assert error.value.field == "steps[1].cost_usd"
