"""Weighted rollouts: deterministic assignment, per-arm figures, promote, stop and the
automatic stop with the numbers that triggered it."""

from __future__ import annotations

import uuid

import pytest

from agentos.api import Conflict
from prompts.assignment import choose_version_id, rollout_bucket
from prompts.errors import PromptError
from prompts.jobs import check_rollouts
from prompts.models import PromptRollout
from prompts.rollouts import (
    prompt_rollout_promote,
    prompt_rollout_start,
    prompt_rollout_stop,
    rollout_arms,
)
from prompts.services import (
    prompt_version_activate,
    prompt_version_create,
    prompt_version_for_task,
    prompt_version_for_task_cached,
    prompt_version_record_use,
    running_rollouts,
)

TASK_IDS = [uuid.UUID(int=n * 7919 + 17) for n in range(1000)]


@pytest.fixture
def candidate(template, version):
    return prompt_version_create(template=template, body="Say hi to {{ name }}, briefly.", note="shorter")


def use(version, *, ok: int = 0, failed: int = 0) -> None:
    for success in [True] * ok + [False] * failed:
        prompt_version_record_use(version_id=version.pk, success=success, tokens_in=10, tokens_out=5, latency_ms=50)


def test_ten_percent_of_a_thousand_tasks_deterministically():
    chosen = [choose_version_id(slug="plan", task_id=t, active_id=1, candidate_id=2, weight=10) for t in TASK_IDS]
    share = chosen.count(2)
    assert 70 <= share <= 130  # ~10 %: binomial(1000, 0.1) has a standard deviation of ~9.5
    assert chosen == [choose_version_id(slug="plan", task_id=t, active_id=1, candidate_id=2, weight=10)
                      for t in TASK_IDS]
    # The same task ids with string ids give the same arms (a runner may hold either form).
    assert chosen == [choose_version_id(slug="plan", task_id=str(t), active_id=1, candidate_id=2, weight=10)
                      for t in TASK_IDS]
    # Another slug splits the tasks differently; a larger weight only adds tasks to the candidate.
    other = [choose_version_id(slug="synthesize", task_id=t, active_id=1, candidate_id=2, weight=10) for t in TASK_IDS]
    assert other != chosen
    wider = [choose_version_id(slug="plan", task_id=t, active_id=1, candidate_id=2, weight=30) for t in TASK_IDS]
    assert all(w == 2 for c, w in zip(chosen, wider, strict=True) if c == 2) and wider.count(2) > share
    everyone = {choose_version_id(slug="plan", task_id=t, active_id=1, candidate_id=2, weight=100) for t in TASK_IDS}
    nobody = {choose_version_id(slug="plan", task_id=t, active_id=1, candidate_id=None, weight=50) for t in TASK_IDS}
    assert (everyone, nobody) == ({2}, {1})
    assert 0 <= rollout_bucket(slug="plan", task_id=TASK_IDS[0]) < 10_000


def test_prompt_version_for_task_follows_the_running_rollout(version, candidate, django_assert_num_queries):
    assert {prompt_version_for_task(slug="greet", task_id=t).pk for t in TASK_IDS[:50]} == {version.pk}
    prompt_rollout_start(candidate=candidate, weight=10)
    picks = [prompt_version_for_task(slug="greet", task_id=t).pk for t in TASK_IDS]
    assert 70 <= picks.count(candidate.pk) <= 130
    assert picks == [prompt_version_for_task(slug="greet", task_id=t).pk for t in TASK_IDS]
    expected = [choose_version_id(slug="greet", task_id=t, active_id=version.pk, candidate_id=candidate.pk,
                                  weight=10) for t in TASK_IDS]
    assert picks == expected
    on_active = next(t for t, pick in zip(TASK_IDS, picks, strict=True) if pick == version.pk)
    with django_assert_num_queries(1):
        assert prompt_version_for_task(slug="greet", task_id=on_active).label == "greet@1"
    # The cached variant agrees, given what running_rollouts() reports.
    candidate_id, weight = running_rollouts()["greet"]
    cached = [prompt_version_for_task_cached(slug="greet", task_id=t, active_id=version.pk, template_stamp="s",
                                             candidate_id=candidate_id, weight=weight).pk for t in TASK_IDS[:200]]
    assert cached == picks[:200]


def test_start_refuses_the_active_version_a_second_rollout_and_bad_weights(version, candidate):
    with pytest.raises(PromptError):
        prompt_rollout_start(candidate=version, weight=10)
    with pytest.raises(PromptError):
        prompt_rollout_start(candidate=candidate, weight=0)
    with pytest.raises(PromptError):
        prompt_rollout_start(candidate=candidate, weight=101)
    prompt_rollout_start(candidate=candidate, weight=10)
    with pytest.raises(Conflict):
        prompt_rollout_start(candidate=candidate, weight=20)


def test_arms_count_only_uses_since_the_start(version, candidate):
    use(version, ok=5, failed=5)  # history before the rollout
    rollout = prompt_rollout_start(candidate=candidate, weight=50, min_uses=100)
    use(version, ok=3, failed=1)
    use(candidate, ok=2)
    arms = rollout_arms(rollout=rollout)
    assert (arms["active"].uses, arms["active"].failures, arms["active"].failure_rate) == (4, 1, 0.25)
    assert (arms["candidate"].uses, arms["candidate"].failure_rate, arms["candidate"].label) == (2, 0.0, "greet@2")
    assert arms["candidate"].as_dict()["mean_tokens_in"] == 10


def test_automatic_stop_fires_after_min_uses_with_its_numbers(version, candidate):
    rollout = prompt_rollout_start(candidate=candidate, weight=10, min_uses=20, failure_margin=0.1)
    use(version, ok=45, failed=5)  # active arm: 10 % failures
    use(candidate, ok=12, failed=7)  # 19 uses: 37 % failures, but below min_uses
    rollout.refresh_from_db()
    assert rollout.status == "running"
    use(candidate, failed=1)  # the 20th use crosses the threshold
    rollout.refresh_from_db()
    assert rollout.status == PromptRollout.Status.AUTO_STOPPED and rollout.ended_at
    numbers = rollout.stop_numbers
    assert numbers["candidate"]["uses"] == 20 and numbers["candidate_failure_rate"] == 0.4
    assert numbers["active_failure_rate"] == 0.1 and numbers["failure_margin"] == 0.1 and numbers["min_uses"] == 20
    assert "40.0%" in rollout.stop_reason and "10.0%" in rollout.stop_reason
    # Every task is back on the active version.
    assert {prompt_version_for_task(slug="greet", task_id=t).pk for t in TASK_IDS[:300]} == {version.pk}


def test_no_stop_within_the_margin(version, candidate):
    rollout = prompt_rollout_start(candidate=candidate, weight=10, min_uses=10, failure_margin=0.2)
    use(version, ok=9, failed=1)
    use(candidate, ok=7, failed=3)  # 30 % vs 10 %: exactly the margin, not more
    rollout.refresh_from_db()
    assert rollout.status == "running"


def test_one_early_use_of_the_active_version_does_not_set_the_bar(version, candidate):
    """Until the active arm has min_uses in the rollout, its whole record is the yardstick: one
    early success (0 %) must not stop a candidate that does better than the active history."""
    use(version, ok=17, failed=3)  # history: 15 % failures
    rollout = prompt_rollout_start(candidate=candidate, weight=90, min_uses=10, failure_margin=0.05)
    use(version, ok=1)
    use(candidate, ok=22, failed=3)  # 12 %
    rollout.refresh_from_db()
    assert rollout.status == "running"


def test_one_early_failure_of_the_active_version_does_not_block_the_stop(version, candidate):
    use(version, ok=18, failed=2)  # history: 10 % failures
    rollout = prompt_rollout_start(candidate=candidate, weight=90, min_uses=10, failure_margin=0.1)
    use(version, failed=1)  # alone, 100 %
    use(candidate, ok=6, failed=4)  # 40 %
    rollout.refresh_from_db()
    assert rollout.status == PromptRollout.Status.AUTO_STOPPED
    assert rollout.stop_numbers["active_failure_rate"] == pytest.approx(3 / 21)


def test_start_refuses_a_weight_that_serves_nobody_and_zero_min_uses(version, candidate):
    with pytest.raises(PromptError, match="weight"):
        prompt_rollout_start(candidate=candidate, weight=0.004)
    with pytest.raises(PromptError, match="minimum"):
        prompt_rollout_start(candidate=candidate, weight=10, min_uses=0)
    assert prompt_rollout_start(candidate=candidate, weight=0.01).weight == 0.01


def test_beat_job_stops_rollouts_counted_elsewhere(version, candidate):
    from prompts.models import PromptVersion

    rollout = prompt_rollout_start(candidate=candidate, weight=10, min_uses=5, failure_margin=0.1)
    # The runner's raw SQL increments bypass prompt_version_record_use.
    PromptVersion.objects.filter(pk=candidate.pk).update(uses=10, failures=9, successes=1)
    assert check_rollouts() == 1
    rollout.refresh_from_db()
    assert rollout.status == "auto_stopped" and rollout.stop_numbers["candidate"]["failures"] == 9
    assert check_rollouts() == 0


def test_promote_activates_the_candidate_and_stop_ends_it(version, candidate, staff_user):
    rollout = prompt_rollout_start(candidate=candidate, weight=10)
    rollout = prompt_rollout_promote(rollout=rollout, by=staff_user)
    candidate.refresh_from_db()
    assert rollout.status == "promoted" and candidate.is_active and rollout.stop_numbers["candidate"]["uses"] == 0
    with pytest.raises(Conflict):
        prompt_rollout_stop(rollout=rollout)
    third = prompt_version_create(template=candidate.template, body="Hello {{ name }}!")
    again = prompt_rollout_start(candidate=third, weight=5)
    assert prompt_rollout_stop(rollout=again, by=staff_user).status == "stopped"
    assert not running_rollouts()


def test_activating_another_version_ends_the_rollout(template, version, candidate):
    rollout = prompt_rollout_start(candidate=candidate, weight=10)
    prompt_version_activate(version=version)  # the same active version again: nothing changes
    rollout.refresh_from_db()
    assert rollout.status == "running"
    third = prompt_version_create(template=template, body="Hey {{ name }}.")
    prompt_version_activate(version=third)
    rollout.refresh_from_db()
    assert rollout.status == "stopped" and "version 3 was activated" in rollout.stop_reason


def test_rollouts_api_is_read_only_with_arms(api_client, user, version, candidate):
    assert api_client.get("/api/v1/prompt-rollouts").status_code in (401, 403)
    rollout = prompt_rollout_start(candidate=candidate, weight=10)
    use(candidate, ok=1, failed=1)
    api_client.force_authenticate(user)
    [row] = api_client.get("/api/v1/prompt-rollouts/").json()["results"]
    assert (row["id"], row["candidate"], row["active_version"], row["weight"]) == (rollout.pk, "greet@2", "greet@1", 10)
    assert row["arms"]["candidate"]["uses"] == 2 and row["arms"]["candidate"]["failure_rate"] == 0.5
    assert row["arms"]["active"]["feedback_up"] == 0
    assert api_client.post("/api/v1/prompt-rollouts", {}, format="json").status_code == 405


def rated_task(owner, label: str, rating: int, *, created_at=None):
    from evals.services import task_feedback_set
    from tasks.models import Step, Task

    task = Task.objects.create(owner=owner, query="Greet Ada", status="completed", result="Hello Ada.")
    Step.objects.create(task=task, index=0, kind="llm", prompt_label=label)
    if created_at is not None:
        Task.objects.filter(pk=task.pk).update(created_at=created_at)
    task_feedback_set(user=owner, task=task, rating=rating)
    return task


def test_rollouts_api_reads_a_page_in_as_many_queries_for_four_rollouts_as_for_one(api_client, user, template,
                                                                                   version, candidate):
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from prompts.services import prompt_template_create

    first = prompt_rollout_start(candidate=candidate, weight=10)
    rated_task(user, candidate.label, -1)
    rated_task(user, candidate.label, 1, created_at=first.started_at - timedelta(hours=1))  # before it started
    api_client.force_authenticate(user)

    def listed() -> tuple[int, dict]:
        with CaptureQueriesContext(connection) as captured:
            response = api_client.get("/api/v1/prompt-rollouts/")
        assert response.status_code == 200, response.content
        return len(captured), {row["id"]: row["arms"] for row in response.json()["results"]}

    queries_for_one, arms = listed()
    assert (arms[first.pk]["candidate"]["feedback_up"], arms[first.pk]["candidate"]["feedback_down"]) == (0, 1)
    # The same candidate again, started after that feedback: its own window counts none of it.
    prompt_rollout_stop(rollout=first)
    again = prompt_rollout_start(candidate=candidate, weight=20)
    PromptRollout.objects.filter(pk=again.pk).update(started_at=again.started_at + timedelta(minutes=1))
    others = []
    for n in range(2):
        other = prompt_template_create(slug=f"greet-{n}", required_variables=["name"])
        prompt_version_create(template=other, body="Hello {{ name }}.", activate=True)
        others.append(prompt_rollout_start(
            candidate=prompt_version_create(template=other, body="Hi {{ name }}."), weight=10))
    rated_task(user, others[1].active_version.label, 1)
    queries_for_four, arms = listed()
    figures = {pk: {name: (arm["feedback_up"], arm["feedback_down"]) for name, arm in arm_pair.items()}
               for pk, arm_pair in arms.items()}
    assert figures == {first.pk: {"active": (0, 0), "candidate": (0, 1)},
                       again.pk: {"active": (0, 0), "candidate": (0, 0)},
                       others[0].pk: {"active": (0, 0), "candidate": (0, 0)},
                       others[1].pk: {"active": (1, 0), "candidate": (0, 0)}}
    assert queries_for_four == queries_for_one  # no query per rollout
